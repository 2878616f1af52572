package io.hublink

import io.hublink.ffi.HubException
import io.hublink.ffi.HubValue

/**
 * The native side's plain C functions for calls (`bindings/ffi/src/raw.rs`), bound by JNA's
 * direct mapping: primitives and byte arrays only, so a call allocates no JNA `Structure` or
 * `Memory` (whose global bookkeeping made each generated call cost hundreds of microseconds
 * under load).
 */
@Suppress("FunctionName")
internal object RawNative {
    init {
        // The library the generated code loads, by the same name and override.
        val name = System.getProperty("uniffi.component.hublink_ffi.libraryOverride") ?: "hublink_ffi"
        com.sun.jna.Native.register(RawNative::class.java, name)
    }

    @JvmStatic external fun hublink_raw_call(channel: Long, callId: Long, send: Int, frame: ByteArray, len: Long): Int

    @JvmStatic external fun hublink_raw_next_outcomes(channel: Long, out: ByteArray, capacity: Long): Long

    @JvmStatic external fun hublink_raw_close(channel: Long)

    const val SUBMITTED = 0
    const val CLOSED = -1
    const val BAD_FRAME = -2
}

/**
 * A connection's calls over [RawNative]: [submit] sends the method and arguments as one frame;
 * one daemon thread reads the outcomes, many per native call, and hands each to [complete]
 * (id, value or error). When the channel has ended (after [close]), [ended] runs once: the
 * calls still waiting then get an error from it, so none waits forever.
 */
internal class RawCalls(
    private val channel: Long,
    private val complete: (Long, HubValue?, HubLinkException?) -> Unit,
    private val ended: () -> Unit,
) {
    init {
        Thread(::readOutcomes, "hublink-calls").apply { isDaemon = true }.start()
    }

    /** Submits call [id]; false when the channel is closed (nothing was submitted). */
    fun submit(id: Long, send: Boolean, method: String, args: List<HubValue>): Boolean {
        val frame = MessagePackWriter()
        val name = method.encodeToByteArray()
        frame.intLittleEndian(name.size)
        frame.raw(name)
        frame.arrayHeader(args.size)
        args.forEach(frame::value)
        return when (val status = RawNative.hublink_raw_call(channel, id, if (send) 1 else 0, frame.bytes, frame.size.toLong())) {
            RawNative.SUBMITTED -> true
            RawNative.CLOSED -> false
            RawNative.BAD_FRAME -> throw InvalidArgumentException("the arguments of '$method' are not hub values the protocol can carry", null)
            else -> throw OtherHubException("the call to '$method' failed inside the native library ($status)", null)
        }
    }

    /** Ends the channel: calls are refused; the outcomes queued until now are still read. */
    fun close() = RawNative.hublink_raw_close(channel)

    private fun readOutcomes() {
        var buffer = ByteArray(64 * 1024)
        try {
            while (true) {
                val n = RawNative.hublink_raw_next_outcomes(channel, buffer, buffer.size.toLong())
                when {
                    n == 0L -> return
                    n < 0 -> buffer = ByteArray(-n.toInt())
                    else -> readBatch(buffer, n.toInt())
                }
            }
        } finally {
            ended()
        }
    }

    private fun readBatch(buffer: ByteArray, size: Int) {
        var pos = 0
        while (pos < size) {
            val id = littleEndian(buffer, pos, 8)
            val isError = buffer[pos + 8].toInt() != 0
            val body = pos + HEADER
            val end = body + littleEndian(buffer, pos + 9, 4).toInt()
            pos = end
            try {
                if (isError) complete(id, null, error(buffer, body, end))
                else complete(id, MessagePackReader(buffer, body, end).value(), null)
            } catch (e: HubLinkException) {
                complete(id, null, e)
            }
        }
    }

    private fun error(buffer: ByteArray, body: Int, end: Int): HubLinkException {
        val status = if (buffer[body + 1].toInt() != 0) littleEndian(buffer, body + 2, 2).toUShort() else null
        val reason = buffer.decodeToString(body + 4, end)
        val error = when (buffer[body].toInt()) {
            0 -> HubException.Negotiation(reason, status)
            1 -> HubException.Transport(reason, status)
            2 -> HubException.Handshake(reason, status)
            3 -> HubException.Timeout(reason, status)
            4 -> HubException.Hub(reason, status)
            5 -> HubException.ConnectionClosed(reason, status)
            6 -> HubException.InvalidState(reason, status)
            7 -> HubException.InvalidArgument(reason, status)
            8 -> HubException.Protocol(reason, status)
            9 -> HubException.Cancelled(reason, status)
            else -> HubException.Other(reason, status)
        }
        return error.toHubLink()
    }

    private fun littleEndian(buffer: ByteArray, at: Int, count: Int): Long {
        var n = 0L
        for (i in count - 1 downTo 0) n = (n shl 8) or (buffer[at + i].toLong() and 0xff)
        return n
    }

    private companion object {
        /** An outcome's bytes before its body: id, kind, body length. */
        const val HEADER = 13
    }
}
