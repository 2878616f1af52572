package io.hublink

import io.hublink.ffi.CallSink
import io.hublink.ffi.CallbackException
import io.hublink.ffi.HubException
import io.hublink.ffi.HubEventKind
import io.hublink.ffi.HubHandler
import io.hublink.ffi.HubValue
import io.hublink.ffi.UploadSender
import kotlinx.coroutines.CancellableContinuation
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Deferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.async
import kotlinx.coroutines.cancel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.flow.SharedFlow
import kotlinx.coroutines.flow.asSharedFlow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.suspendCancellableCoroutine
import kotlinx.coroutines.withTimeoutOrNull
import kotlinx.serialization.serializer
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicLong
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException

/** A lifecycle event of a connection. */
sealed class HubLifecycleEvent {
    /** The connection closed: [error] is why (`null` after `stop()`). */
    data class Closed(val error: HubLinkException?) : HubLifecycleEvent()

    /** The connection was lost and reconnects (automatic reconnect): [error] is why. */
    data class Reconnecting(val error: HubLinkException?) : HubLifecycleEvent()

    /** The connection is back, with [connectionId]. */
    data class Reconnected(val connectionId: String?) : HubLifecycleEvent()
}

/** The arguments of a client-method invocation. */
class HubArgs(val values: List<HubValue>) {
    val size: Int get() = values.size

    /** Argument [index] decoded as [T]. */
    inline fun <reified T> get(index: Int): T = HubValues.decodeAs(values.getOrElse(index) {
        throw InvalidArgumentException("the invocation has ${values.size} argument(s), not ${index + 1}", null)
    })
}

/** Decodes [value] as [T] ([HubValue] and [Unit] as they are). */
inline fun <reified T> HubValues.decodeAs(value: HubValue): T = when (T::class) {
    HubValue::class, Any::class -> value as T
    Unit::class -> Unit as T
    else -> decodePlain(value, T::class).let { if (it !== NotPlain) it as T else decode(serializer<T>(), value) }
}

/** A registered client method; [remove] (or `close`) unregisters it. */
class Registration internal constructor(private val connection: HubConnection, val id: ULong) : AutoCloseable {
    fun remove(): Boolean = connection.ffi.removeHandler(id)
    override fun close() {
        remove()
    }
}

/**
 * A SignalR hub connection, built with [HubConnectionBuilder]. Calls are submitted when they are
 * made, so they reach the server in that order; `suspend` functions then await the outcome.
 * Failures are [HubLinkException]s. Close it (or `use {}`) to stop it and free the native side.
 *
 * Handlers and lifecycle callbacks run on [Dispatchers.Default], never on a UI thread.
 */
class HubConnection internal constructor(@PublishedApi internal val ffi: io.hublink.ffi.HubConnection) : AutoCloseable {
    @PublishedApi
    internal val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private val lifecycle = MutableSharedFlow<HubLifecycleEvent>(extraBufferCapacity = 64)
    private val closedCallbacks = CopyOnWriteArrayList<suspend (HubLinkException?) -> Unit>()
    private val reconnectingCallbacks = CopyOnWriteArrayList<suspend (HubLinkException?) -> Unit>()
    private val reconnectedCallbacks = CopyOnWriteArrayList<suspend (String?) -> Unit>()

    /**
     * The calls awaiting their outcome, by id: a suspended `invoke`'s continuation or an
     * `invokeAsync`'s deferred. The core reports each call once to [sink], in one upcall, on
     * its connection task (no native future, poll or free per call).
     */
    private val waiting = ConcurrentHashMap<Long, Any>()
    private val lastId = AtomicLong()
    private val sink = object : CallSink {
        override fun resolve(id: ULong, value: HubValue) = done(id.toLong(), value, null)
        override fun reject(id: ULong, error: HubException) = done(id.toLong(), null, error.toHubLink())
    }

    @Suppress("UNCHECKED_CAST")
    private fun done(id: Long, value: HubValue?, error: HubLinkException?) {
        when (val waiter = waiting.remove(id)) {
            is CancellableContinuation<*> -> (waiter as CancellableContinuation<HubValue>).let {
                if (error == null) it.resume(value!!) else it.resumeWithException(error)
            }
            is CompletableDeferred<*> -> (waiter as CompletableDeferred<HubValue>).let {
                if (error == null) it.complete(value!!) else it.completeExceptionally(error)
            }
        }
    }

    /**
     * Calls without upload streams go through [RawCalls] (no JNA structure per call); the
     * system property `io.hublink.rawCalls=false` sends them through the generated code as
     * well, to compare the two.
     */
    private val raw: RawCalls? =
        if (System.getProperty("io.hublink.rawCalls") == "false") null
        else RawCalls(ffi.openRawCalls().toLong(), ::done, ::failWaiting)

    /** Fails every call still waiting: the connection's outcomes have ended. */
    private fun failWaiting() {
        for (id in waiting.keys.toList()) {
            done(id, null, ConnectionClosedException("the connection was closed before the call completed", null))
        }
    }

    init {
        NativeThreads.setUp()
        mapped { ffi.setCallSink(sink) }
        // One pump reads the core's event stream and fans it out.
        scope.launch {
            while (true) {
                // After close() the native object is gone: the generated code then throws
                // IllegalStateException, which ends the pump like the end of the events.
                val e = try {
                    ffi.nextEvent()
                } catch (_: IllegalStateException) {
                    null
                } ?: break
                val event = when (e.kind) {
                    HubEventKind.CLOSED -> HubLifecycleEvent.Closed(e.error?.toHubLink())
                    HubEventKind.RECONNECTING -> HubLifecycleEvent.Reconnecting(e.error?.toHubLink())
                    HubEventKind.RECONNECTED -> HubLifecycleEvent.Reconnected(e.connectionId)
                }
                when (event) {
                    is HubLifecycleEvent.Closed -> closedCallbacks.forEach { runCatching { it(event.error) } }
                    is HubLifecycleEvent.Reconnecting -> reconnectingCallbacks.forEach { runCatching { it(event.error) } }
                    is HubLifecycleEvent.Reconnected -> reconnectedCallbacks.forEach { runCatching { it(event.connectionId) } }
                }
                lifecycle.emit(event)
            }
        }
    }

    /** Lifecycle events, as they happen (a hot flow: collect it before they happen). */
    val events: SharedFlow<HubLifecycleEvent> = lifecycle.asSharedFlow()

    fun onClosed(callback: suspend (HubLinkException?) -> Unit) {
        closedCallbacks += callback
    }

    fun onReconnecting(callback: suspend (HubLinkException?) -> Unit) {
        reconnectingCallbacks += callback
    }

    fun onReconnected(callback: suspend (String?) -> Unit) {
        reconnectedCallbacks += callback
    }

    /** "Disconnected", "Connecting", "Connected", "Disconnecting" or "Reconnecting". */
    val state: String get() = ffi.state()
    val connectionId: String? get() = ffi.connectionId()

    /** "WebSockets", "ServerSentEvents" or "LongPolling" while connected. */
    val transport: String? get() = ffi.transport()

    suspend fun start() = mapped { ffi.start() }

    suspend fun stop() = mapped { ffi.stop() }

    /**
     * Converts call arguments; a [Flow] argument is an upload stream, fed from [scope] once the
     * call is submitted (by [feed]).
     */
    @PublishedApi
    internal fun prepare(args: Array<out Any?>): Pair<List<HubValue>, List<Pair<UploadSender, Flow<*>>>> {
        val values = ArrayList<HubValue>(args.size)
        val uploads = ArrayList<Pair<UploadSender, Flow<*>>>()
        for (arg in args) {
            if (arg is Flow<*>) uploads += UploadSender() to arg else values += HubValues.encode(arg)
        }
        return values to uploads
    }

    @PublishedApi
    internal fun feed(uploads: List<Pair<UploadSender, Flow<*>>>) {
        for ((sender, items) in uploads) {
            scope.launch {
                try {
                    items.collect { mapped { sender.send(HubValues.encode(it)) } }
                    sender.complete()
                } catch (e: Throwable) {
                    sender.fail(e.message ?: e.toString())
                } finally {
                    sender.close()
                }
            }
        }
    }

    /** Submits call [id] now (an invocation, or a send when [send]); the outcome goes to [waiting]. */
    private fun submit(id: Long, send: Boolean, method: String, args: Array<out Any?>) {
        if (raw != null && args.none { it is Flow<*> }) {
            val submitted = try {
                raw.submit(id, send, method, args.map(HubValues::encode))
            } catch (e: Throwable) {
                waiting.remove(id)
                throw e
            }
            // Not submitted only once closed: the generated code then reports that as before.
            if (submitted) return
        }
        val (values, uploads) = prepare(args)
        val senders = uploads.map { it.first }
        try {
            mapped {
                if (send) ffi.sendWith(id.toULong(), method, values, senders)
                else ffi.invokeWith(id.toULong(), method, values, senders)
            }
        } catch (e: Throwable) {
            waiting.remove(id)
            throw e
        }
        feed(uploads)
    }

    /** Submits a call now and suspends until its outcome (a send's: once written, `Null`). */
    @PublishedApi
    internal suspend fun call(send: Boolean, method: String, args: Array<out Any?>): HubValue {
        val id = lastId.incrementAndGet()
        return suspendCancellableCoroutine { continuation ->
            waiting[id] = continuation
            continuation.invokeOnCancellation { waiting.remove(id) }
            submit(id, send, method, args)
        }
    }

    /** Submits a call now; the deferred completes with its outcome. */
    @PublishedApi
    internal fun submitDeferred(send: Boolean, method: String, args: Array<out Any?>): CompletableDeferred<HubValue> {
        val id = lastId.incrementAndGet()
        val outcome = CompletableDeferred<HubValue>()
        waiting[id] = outcome
        submit(id, send, method, args)
        return outcome
    }

    /** Invokes [method] and returns its result as a [HubValue]. */
    suspend fun invokeValue(method: String, vararg args: Any?): HubValue = call(false, method, args)

    /** Invokes [method] and returns its result decoded as [T] (kotlinx.serialization). */
    suspend inline fun <reified T> invoke(method: String, vararg args: Any?): T =
        HubValues.decodeAs(call(false, method, args))

    /** Submits an invocation now and returns its result as a [Deferred] (the call order is the submit order). */
    inline fun <reified T> invokeAsync(method: String, vararg args: Any?): Deferred<T> {
        val outcome = submitDeferred(false, method, args)
        return scope.async(start = CoroutineStart.UNDISPATCHED) { HubValues.decodeAs<T>(outcome.await()) }
    }

    /** Sends [method] (no result); returns once it is written. */
    suspend fun send(method: String, vararg args: Any?) {
        call(true, method, args)
    }

    /** Submits a send now; the [Deferred] completes once it is written. */
    fun sendAsync(method: String, vararg args: Any?): Deferred<Unit> {
        val outcome = submitDeferred(true, method, args)
        return scope.async(start = CoroutineStart.UNDISPATCHED) { outcome.await(); Unit }
    }

    /**
     * A server-to-client stream as a cold flow: each collection invokes [method]; leaving the
     * collection early (or cancelling it) cancels the stream on the server.
     */
    fun streamValues(method: String, vararg args: Any?): Flow<HubValue> = flow {
        val (values, uploads) = prepare(args)
        val stream = mapped { ffi.stream(method, values, uploads.map { it.first }) }
        feed(uploads)
        var ended = false
        try {
            while (true) {
                val batch = mapped { stream.nextBatch(256u) }
                if (batch.isEmpty()) {
                    ended = true
                    break
                }
                for (item in batch) emit(item)
            }
        } catch (e: HubLinkException) {
            ended = true
            throw e
        } finally {
            if (!ended) stream.cancel()
            stream.close()
        }
    }

    /** [streamValues] with items decoded as [T]. */
    inline fun <reified T> stream(method: String, vararg args: Any?): Flow<T> =
        streamValues(method, *args).map { HubValues.decodeAs<T>(it) }

    /** The registrations of each handler object, by method (lower case), for `off(method, handler)`. */
    private val registrations = HashMap<String, MutableList<Pair<Any, ULong>>>()

    /**
     * Registers [handler] for [method]; [result] says whether its value answers client-result
     * requests; [key] is the caller's handler object, which `off(method, key)` removes.
     */
    @PublishedApi
    internal fun register(method: String, result: Boolean, key: Any, handler: suspend (HubArgs) -> HubValue): Registration {
        val foreign = object : HubHandler {
            override suspend fun call(arguments: List<HubValue>): HubValue = try {
                handler(HubArgs(arguments))
            } catch (e: Throwable) {
                throw CallbackException.Failed(e.message ?: e.toString())
            }
        }
        val id = ffi.on(method, foreign, result)
        synchronized(registrations) {
            registrations.getOrPut(method.lowercase()) { mutableListOf() } += key to id
        }
        return Registration(this, id)
    }

    /** Registers a client method with its raw arguments. */
    fun on(method: String, handler: suspend (HubArgs) -> Unit): Registration =
        register(method, false, handler) { handler(it); HubValue.Null }

    /** Registers a client method of one argument. */
    @JvmName("on1")
    inline fun <reified A> on(method: String, noinline handler: suspend (A) -> Unit): Registration =
        register(method, false, handler) { handler(it.get<A>(0)); HubValue.Null }

    /** Registers a client method of two arguments. */
    @JvmName("on2")
    inline fun <reified A, reified B> on(method: String, noinline handler: suspend (A, B) -> Unit): Registration =
        register(method, false, handler) { handler(it.get<A>(0), it.get<B>(1)); HubValue.Null }

    /** Registers a client method of three arguments. */
    @JvmName("on3")
    inline fun <reified A, reified B, reified C> on(
        method: String,
        noinline handler: suspend (A, B, C) -> Unit,
    ): Registration = register(method, false, handler) { handler(it.get<A>(0), it.get<B>(1), it.get<C>(2)); HubValue.Null }

    /** Registers a client method whose return value answers the server's client-result requests. */
    inline fun <reified R> onResult(method: String, noinline handler: suspend (HubArgs) -> R): Registration =
        register(method, true, handler) { HubValues.encode(serializer<R>(), handler(it)) }

    /** Removes every handler of [method]. */
    fun off(method: String) {
        synchronized(registrations) { registrations.remove(method.lowercase()) }
        ffi.off(method)
    }

    /**
     * Removes every registration of [handler] (the same object given to `on`) for [method],
     * keeping the method's other handlers; false if it had none.
     */
    fun off(method: String, handler: Any): Boolean {
        val ids = synchronized(registrations) {
            val list = registrations[method.lowercase()] ?: return false
            val mine = list.filter { it.first === handler }
            list.removeAll { it.first === handler }
            mine.map { it.second }
        }
        return ids.map { ffi.removeHandler(it) }.any { it }
    }

    /** Stops the connection (waiting up to 10 s) and frees the native side. Prefer `stop()` first. */
    override fun close() {
        runBlocking { withTimeoutOrNull(10_000) { runCatching { ffi.stop() } } }
        raw?.close()
        scope.cancel()
        ffi.close()
    }
}

/**
 * The Rust runtime's threads complete every async call through one JNA callback (uniffi's
 * future continuation). By default JNA attaches such a native thread to the JVM for each
 * callback and detaches it afterwards; keeping them attached (as daemon threads) saves that on
 * every call. JNA's CallbackThreadInitializer exists on Android too.
 */
internal object NativeThreads {
    private val done = java.util.concurrent.atomic.AtomicBoolean(false)

    fun setUp() {
        if (done.compareAndSet(false, true)) {
            val init = com.sun.jna.CallbackThreadInitializer(true, false, "hublink-callback")
            for (callback in listOf(
                io.hublink.ffi.uniffiRustFutureContinuationCallbackImpl,
                io.hublink.ffi.uniffiCallbackInterfaceCallSink.resolve,
                io.hublink.ffi.uniffiCallbackInterfaceCallSink.reject,
            )) com.sun.jna.Native.setCallbackThreadInitializer(callback, init)
        }
    }
}
