package io.hublink

import io.hublink.ffi.HubValue
import io.hublink.ffi.MapEntry

/**
 * [HubValue]s in MessagePack, as the native side reads and writes them for [RawCalls] (the
 * same mapping as the MessagePack hub protocol: timestamps as extension −1, integers above
 * `Long.MAX_VALUE` as [HubValue.UInt64]).
 */
internal class MessagePackWriter(capacity: Int = 64) {
    var bytes = ByteArray(capacity)
        private set
    var size = 0
        private set

    private fun room(n: Int) {
        if (size + n > bytes.size) bytes = bytes.copyOf(maxOf(bytes.size * 2, size + n))
    }

    fun byte(b: Int) {
        room(1)
        bytes[size++] = b.toByte()
    }

    /** [n] in [count] bytes, big-endian (MessagePack's order). */
    private fun bigEndian(n: Long, count: Int) {
        room(count)
        for (i in count - 1 downTo 0) bytes[size++] = (n ushr (8 * i)).toByte()
    }

    fun intLittleEndian(n: Int) {
        room(4)
        for (i in 0 until 4) bytes[size++] = (n ushr (8 * i)).toByte()
    }

    fun raw(data: ByteArray) {
        room(data.size)
        data.copyInto(bytes, size)
        size += data.size
    }

    private fun header(n: Int, fix: Int, fixLimit: Int, b8: Int, b16: Int, b32: Int) = when {
        fix >= 0 && n < fixLimit -> byte(fix or n)
        b8 >= 0 && n <= 0xff -> { byte(b8); bigEndian(n.toLong(), 1) }
        n <= 0xffff -> { byte(b16); bigEndian(n.toLong(), 2) }
        else -> { byte(b32); bigEndian(n.toLong(), 4) }
    }

    fun arrayHeader(n: Int) = header(n, 0x90, 16, -1, 0xdc, 0xdd)

    fun value(value: HubValue) {
        when (value) {
            is HubValue.Null -> byte(0xc0)
            is HubValue.Bool -> byte(if (value.value) 0xc3 else 0xc2)
            is HubValue.Int64 -> int(value.value)
            is HubValue.UInt64 -> { byte(0xcf); bigEndian(value.value.toLong(), 8) }
            is HubValue.Float32 -> { byte(0xca); bigEndian(value.value.toRawBits().toLong(), 4) }
            is HubValue.Float64 -> { byte(0xcb); bigEndian(value.value.toRawBits(), 8) }
            is HubValue.Text -> value.value.encodeToByteArray().let { header(it.size, 0xa0, 32, 0xd9, 0xda, 0xdb); raw(it) }
            is HubValue.Bytes -> { header(value.value.size, -1, 0, 0xc4, 0xc5, 0xc6); raw(value.value) }
            is HubValue.Array -> { arrayHeader(value.items.size); value.items.forEach(::value) }
            is HubValue.Map -> {
                header(value.entries.size, 0x80, 16, -1, 0xde, 0xdf)
                for (entry in value.entries) {
                    value(entry.key)
                    value(entry.value)
                }
            }
            is HubValue.Timestamp -> {
                if (value.nanoseconds >= 1_000_000_000u) {
                    throw InvalidArgumentException(
                        "a timestamp's nanoseconds must be below 1000000000, not ${value.nanoseconds}", null,
                    )
                }
                header(12, -1, 0, 0xc7, 0xc8, 0xc9)
                byte(TIMESTAMP_EXT)
                bigEndian(value.nanoseconds.toLong(), 4)
                bigEndian(value.seconds, 8)
            }
            is HubValue.Extension -> { header(value.data.size, -1, 0, 0xc7, 0xc8, 0xc9); byte(value.typeCode.toInt()); raw(value.data) }
        }
    }

    private fun int(n: Long) = when {
        n in 0..0x7f || n in -32..-1 -> byte(n.toInt())
        n > 0 && n <= 0xff -> { byte(0xcc); bigEndian(n, 1) }
        n > 0 && n <= 0xffff -> { byte(0xcd); bigEndian(n, 2) }
        n > 0 && n <= 0xffffffffL -> { byte(0xce); bigEndian(n, 4) }
        n > 0 -> { byte(0xcf); bigEndian(n, 8) }
        n >= Byte.MIN_VALUE -> { byte(0xd0); bigEndian(n, 1) }
        n >= Short.MIN_VALUE -> { byte(0xd1); bigEndian(n, 2) }
        n >= Int.MIN_VALUE -> { byte(0xd2); bigEndian(n, 4) }
        else -> { byte(0xd3); bigEndian(n, 8) }
    }
}

/** Reads MessagePack values from [bytes] between [pos] and [end]; throws [ProtocolException] on bad input. */
internal class MessagePackReader(private val bytes: ByteArray, var pos: Int, private val end: Int) {
    private fun bad(): Nothing = throw ProtocolException("the native side passed a malformed value", null)

    private fun u8(): Int {
        if (pos >= end) bad()
        return bytes[pos++].toInt() and 0xff
    }

    /** [count] bytes, big-endian, as an unsigned number (up to 8 bytes, the top bit kept). */
    private fun bigEndian(count: Int): Long {
        if (end - pos < count) bad()
        var n = 0L
        repeat(count) { n = (n shl 8) or (bytes[pos++].toLong() and 0xff) }
        return n
    }

    private fun take(n: Long): ByteArray {
        if (n < 0 || n > end - pos) bad()
        return bytes.copyOfRange(pos, pos + n.toInt()).also { pos += n.toInt() }
    }

    private fun unsigned(n: Long) = if (n >= 0) HubValue.Int64(n) else HubValue.UInt64(n.toULong())

    fun value(depth: Int = 0): HubValue {
        if (depth > MAX_DEPTH) bad()
        val b = u8()
        return when {
            b <= 0x7f -> HubValue.Int64(b.toLong())
            b >= 0xe0 -> HubValue.Int64((b - 0x100).toLong())
            b in 0xa0..0xbf -> text((b and 0x1f).toLong())
            b in 0x90..0x9f -> array((b and 0x0f).toLong(), depth)
            b in 0x80..0x8f -> map((b and 0x0f).toLong(), depth)
            else -> when (b) {
                0xc0 -> HubValue.Null
                0xc2 -> HubValue.Bool(false)
                0xc3 -> HubValue.Bool(true)
                0xcc -> HubValue.Int64(bigEndian(1))
                0xcd -> HubValue.Int64(bigEndian(2))
                0xce -> HubValue.Int64(bigEndian(4))
                0xcf -> unsigned(bigEndian(8))
                0xd0 -> HubValue.Int64(bigEndian(1).toByte().toLong())
                0xd1 -> HubValue.Int64(bigEndian(2).toShort().toLong())
                0xd2 -> HubValue.Int64(bigEndian(4).toInt().toLong())
                0xd3 -> HubValue.Int64(bigEndian(8))
                0xca -> HubValue.Float32(Float.fromBits(bigEndian(4).toInt()))
                0xcb -> HubValue.Float64(Double.fromBits(bigEndian(8)))
                0xd9 -> text(bigEndian(1))
                0xda -> text(bigEndian(2))
                0xdb -> text(bigEndian(4))
                0xc4 -> HubValue.Bytes(take(bigEndian(1)))
                0xc5 -> HubValue.Bytes(take(bigEndian(2)))
                0xc6 -> HubValue.Bytes(take(bigEndian(4)))
                0xdc -> array(bigEndian(2), depth)
                0xdd -> array(bigEndian(4), depth)
                0xde -> map(bigEndian(2), depth)
                0xdf -> map(bigEndian(4), depth)
                0xd4 -> extension(1)
                0xd5 -> extension(2)
                0xd6 -> extension(4)
                0xd7 -> extension(8)
                0xd8 -> extension(16)
                0xc7 -> extension(bigEndian(1))
                0xc8 -> extension(bigEndian(2))
                0xc9 -> extension(bigEndian(4))
                else -> bad()
            }
        }
    }

    private fun text(n: Long): HubValue {
        if (n > end - pos) bad()
        return HubValue.Text(bytes.decodeToString(pos, pos + n.toInt())).also { pos += n.toInt() }
    }

    // Each item takes at least one byte, so a count beyond the bytes left is malformed (and
    // never allocated).
    private fun array(n: Long, depth: Int): HubValue {
        if (n > end - pos) bad()
        return HubValue.Array(List(n.toInt()) { value(depth + 1) })
    }

    private fun map(n: Long, depth: Int): HubValue {
        if (n > end - pos) bad()
        return HubValue.Map(List(n.toInt()) { MapEntry(value(depth + 1), value(depth + 1)) })
    }

    private fun extension(n: Long): HubValue {
        val type = u8().toByte()
        val data = take(n)
        if (type.toInt() != TIMESTAMP_EXT) return HubValue.Extension(type, data)
        val r = MessagePackReader(data, 0, data.size)
        return when (data.size) {
            4 -> HubValue.Timestamp(r.bigEndian(4), 0u)
            8 -> r.bigEndian(8).let { HubValue.Timestamp(it and 0x3_ffff_ffffL, (it ushr 34).toUInt()) }
            12 -> r.bigEndian(4).let { nanos -> HubValue.Timestamp(r.bigEndian(8), nanos.toUInt()) }
            else -> HubValue.Extension(type, data)
        }
    }

    private companion object {
        const val MAX_DEPTH = 1000
    }
}

private const val TIMESTAMP_EXT = -1
