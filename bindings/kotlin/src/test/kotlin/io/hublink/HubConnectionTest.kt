package io.hublink

import io.hublink.ffi.HubValue
import java.net.URI
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.flow.flowOf
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.yield
import kotlinx.serialization.Serializable
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.MethodSource

@Serializable
data class Point(val x: Int, val y: Int, val label: String, val tags: List<String> = emptyList())

/** Against the in-repo test server (its base URL in the system property `hublink.testserver`). */
class HubConnectionTest {
    companion object {
        val server: String = System.getProperty("hublink.testserver").orEmpty().ifEmpty {
            error("set -Dhublink.testserver=<base URL> (run bindings/kotlin/run-tests.sh)")
        }

        /** Every transport × protocol the spec allows (no MessagePack over Server-Sent Events). */
        @JvmStatic
        fun combos(): List<String> = listOf("ws.json", "ws.msgpack", "sse.json", "lp.json", "lp.msgpack")

        private val transports = mapOf(
            "ws" to TransportType.WebSockets,
            "sse" to TransportType.ServerSentEvents,
            "lp" to TransportType.LongPolling,
        )

        fun builder(combo: String, path: String = "/testhub"): HubConnectionBuilder {
            val (t, p) = combo.split(".")
            val b = HubConnectionBuilder.create(server + path).withTransports(transports.getValue(t))
            return if (p == "msgpack") b.withMessagePack() else b
        }

        fun httpGet(url: String): String = URI(url).toURL().readText()

        fun test(block: suspend CoroutineScope.() -> Unit): Unit = runBlocking { withTimeout(60_000) { block() } }
    }

    @ParameterizedTest
    @MethodSource("combos")
    fun invokeEcho(combo: String) = test {
        // scenario: {t}.{p}.invoke.echo, {t}.{p}.invoke.echo-unicode, {t}.{p}.connect.transport-name, {t}.{p}.invoke.complex-object
        builder(combo).build().use { conn ->
            conn.start()
            assertEquals("Connected", conn.state)
            val expected = transports.getValue(combo.substringBefore(".")).wireName
            assertEquals(expected, conn.transport)
            assertEquals("你好，世界！", conn.invoke<String>("Echo", "你好，世界！"))
            assertEquals(42L, conn.invoke<Long>("echo", 42))
            assertEquals(expected, conn.invoke<String>("GetActiveTransportName"))
            val point = Point(1, -2, "p", listOf("a", "b"))
            assertEquals(point, conn.invoke<Point>("EchoComplexObject", point))
            assertEquals(listOf(1, 2, 3), conn.invoke<List<Int>>("Echo", listOf(1, 2, 3)))
            assertEquals(conn.connectionId, conn.invoke<String>("GetCallerConnectionId"))
            conn.stop()
            assertEquals("Disconnected", conn.state)
        }
    }

    @ParameterizedTest
    @MethodSource("combos")
    fun sendAndOn(combo: String) = test {
        // scenario: {t}.{p}.on.invoke-with-string, {t}.{p}.send.fire-and-forget
        builder(combo).build().use { conn ->
            val typed = Channel<String>(Channel.UNLIMITED)
            val raw = Channel<List<HubValue>>(Channel.UNLIMITED)
            val registration = conn.on<String>("Message") { typed.send(it) }
            conn.on("message") { args -> raw.send(args.values) }
            conn.start()
            conn.send("InvokeWithString", "hi")
            assertEquals("hi", typed.receive())
            assertEquals(listOf<HubValue>(HubValue.Text("hi")), raw.receive())
            assertTrue(registration.remove())
            conn.send("InvokeWithString", "again")
            assertEquals(listOf<HubValue>(HubValue.Text("again")), raw.receive())
            assertTrue(typed.tryReceive().isFailure)
            conn.off("MESSAGE")
            assertEquals(1L, conn.invoke<Long>("Echo", 1))
        }
    }

    @ParameterizedTest
    @MethodSource("combos")
    fun serverStreams(combo: String) = test {
        // scenario: {t}.{p}.stream.server, {t}.{p}.stream.count, {t}.{p}.stream.empty, {t}.{p}.stream.error
        builder(combo).build().use { conn ->
            conn.start()
            assertEquals((0L until 100L).toList(), conn.stream<Long>("StreamCount", 100).toList())
            assertEquals(emptyList<HubValue>(), conn.streamValues("EmptyStream").toList())
            val error = assertThrows<HubMethodException> {
                conn.stream<String>("StreamThrowException", "boom").toList()
            }
            assertTrue(error.message!!.contains("InvalidOperationException: boom"), error.message)
            // Leaving early cancels; the connection stays usable.
            assertEquals(listOf(0L, 1L, 2L), conn.stream<Long>("StreamCount", 1_000_000).take(3).toList())
            assertEquals("after", conn.invoke<String>("Echo", "after"))
        }
    }

    @ParameterizedTest
    @MethodSource("combos")
    fun streamCancel(combo: String) = test {
        // scenario: {t}.{p}.stream.cancel
        builder(combo).build().use { conn ->
            val canceled = CompletableDeferred<Boolean>()
            conn.on("StreamCanceled") { canceled.complete(true) }
            conn.start()
            // A reader cancelled while it waits for the next item.
            val reader = launch(Dispatchers.Default) { conn.streamValues("InfiniteStream").toList() }
            kotlinx.coroutines.delay(300)
            reader.cancel()
            assertTrue(canceled.await())
            assertEquals("alive", conn.invoke<String>("Echo", "alive"))
        }
    }

    @ParameterizedTest
    @MethodSource("combos")
    fun uploadStreams(combo: String) = test {
        // scenario: {t}.{p}.stream.upload, {t}.{p}.stream.upload-sum, {t}.{p}.stream.upload-error
        builder(combo).build().use { conn ->
            conn.start()
            val words = flow {
                for (w in listOf("a", "b", "c")) {
                    yield()
                    emit(w)
                }
            }
            assertEquals("abc", conn.invoke<String>("StreamingConcat", words))
            assertEquals(55L, conn.invoke<Long>("UploadSum", flowOf(*(1..10).toList().toTypedArray())))
            val failing = flow {
                emit("x")
                throw IllegalStateException("Something bad")
            }
            val error = assertThrows<HubMethodException> { conn.invoke<String>("StreamingConcat", failing) }
            assertTrue(error.message!!.contains("Something bad"), error.message)
        }
    }

    @ParameterizedTest
    @MethodSource("combos")
    fun clientResults(combo: String) = test {
        // scenario: {t}.{p}.client-result.value, {t}.{p}.client-result.error, {t}.{p}.client-result.no-handler
        builder(combo).build().use { conn ->
            conn.start()
            val url = "$server/clientresult/${conn.connectionId}"
            suspend fun ask() = withContext(Dispatchers.IO) { httpGet(url) }
            assertEquals("Client didn't provide a result.", ask())
            conn.onResult("Result") { 10 }
            assertEquals("10", ask())
            conn.off("Result")
            conn.onResult<Int>("Result") { throw IllegalArgumentException("from callback") }
            assertEquals("from callback", ask())
            conn.off("result")
            // GetClientResult(name) calls the client method `name` and returns its result.
            conn.onResult("Compute") { Point(3, 4, "computed") }
            assertEquals(Point(3, 4, "computed"), conn.invoke<Point>("GetClientResult", "Compute"))
        }
    }

    @ParameterizedTest
    @MethodSource("combos")
    fun accessTokenAndHeaders(combo: String) = test {
        // scenario: {t}.{p}.headers.custom, {t}.{p}.auth.access-token-factory, {t}.{p}.auth.unauthorized
        builder(combo).withHeader("X-Tenant", "a").build().use { conn ->
            conn.start()
            assertEquals("a", conn.invoke<String>("GetHeader", "X-Tenant"))
        }
        // A provider that returns a token it already has, without suspending.
        val token = withContext(Dispatchers.IO) { httpGet("$server/generateJwtToken") }
        builder(combo, "/authorizedhub").withAccessTokenProvider { token }.build().use { conn ->
            conn.start()
            assertEquals("sync token", conn.invoke<String>("Echo", "sync token"))
        }
        // scenario: {t}.{p}.auth.access-token-factory-async
        // A provider that suspends: it fetches a fresh token over HTTP on another dispatcher.
        var calls = 0
        builder(combo, "/authorizedhub").withAccessTokenProvider {
            calls++
            kotlinx.coroutines.delay(10)
            withContext(Dispatchers.IO) { httpGet("$server/generateJwtToken") }
        }.build().use { conn ->
            conn.start()
            assertEquals("testuser", conn.invoke<String>("GetUserNameIdentifier"))
        }
        assertTrue(calls >= 1)
        builder(combo, "/authorizedhub").build().use { conn ->
            val error = assertThrows<NegotiationException> { conn.start() }
            assertEquals(401, error.status)
        }
        builder(combo, "/authorizedhub").withAccessTokenProvider { error("no token today") }.build().use { conn ->
            val error = assertThrows<NegotiationException> { conn.start() }
            assertTrue(error.message!!.contains("no token today"), error.message)
        }
        // scenario: any.any.negotiate.error
        builder(combo, "/negotiate-error").build().use { conn ->
            val error = assertThrows<NegotiationException> { conn.start() }
            assertTrue(error.message!!.contains("Negotiate refused by the test server."), error.message)
            assertEquals("Disconnected", conn.state)
        }
    }

    @ParameterizedTest
    @MethodSource("combos")
    fun connectionId(combo: String) = test {
        // scenario: {t}.{p}.connect.connection-id
        builder(combo).build().use { conn ->
            assertEquals(null, conn.connectionId)
            conn.start()
            val id = conn.connectionId
            assertTrue(!id.isNullOrEmpty())
            assertEquals(id, conn.invoke<String>("GetCallerConnectionId"))
            conn.stop()
            assertEquals(null, conn.connectionId)
        }
    }

    @ParameterizedTest
    @MethodSource("combos")
    fun concurrentInvocations(combo: String) = test {
        // scenario: {t}.{p}.invoke.concurrent
        builder(combo).build().use { conn ->
            conn.start()
            // 50 coroutines, each suspended in its own invoke at the same time.
            val results = (0 until 50).map { i -> async(Dispatchers.Default) { conn.invoke<Long>("Echo", i) } }.awaitAll()
            assertEquals((0L until 50L).toList(), results)
            val texts = (0 until 50).map { i -> conn.invokeAsync<String>("Echo", "call $i") }.awaitAll()
            assertEquals((0 until 50).map { "call $it" }, texts)
        }
    }

    @ParameterizedTest
    @MethodSource("combos")
    fun hubErrors(combo: String) = test {
        // scenario: {t}.{p}.invoke.throw, {t}.{p}.invoke.unknown-method
        builder(combo).build().use { conn ->
            conn.start()
            val thrown = assertThrows<HubMethodException> { conn.invoke<Unit>("ThrowException", "An error") }
            assertEquals(
                "An unexpected error occurred invoking 'ThrowException' on the server. InvalidOperationException: An error",
                thrown.message,
            )
            val unknown = assertThrows<HubMethodException> { conn.invoke<Unit>("NoSuchMethod") }
            assertTrue(unknown.message!!.contains("Method does not exist"), unknown.message)
            assertEquals("still here", conn.invoke<String>("Echo", "still here"))
            assertEquals("Connected", conn.state)
        }
    }

    @ParameterizedTest
    @MethodSource("combos")
    fun restartKeepsHandlers(combo: String) = test {
        // scenario: {t}.{p}.connect.restart, {t}.{p}.on.survives-restart
        builder(combo).build().use { conn ->
            val got = Channel<String>(Channel.UNLIMITED)
            conn.on<String>("Message") { got.send(it) }
            val ids = mutableListOf<String?>()
            for (round in 0 until 2) {
                conn.start()
                ids += conn.connectionId
                conn.send("InvokeWithString", "round $round")
                assertEquals("round $round", got.receive())
                assertEquals(round.toLong(), conn.invoke<Long>("Echo", round))
                conn.stop()
                assertEquals("Disconnected", conn.state)
            }
            assertNotEquals(ids[0], ids[1])
        }
    }

    @ParameterizedTest
    @MethodSource("combos")
    fun closeWithoutReconnect(combo: String) = test {
        // scenario: {t}.{p}.close.no-reconnect, {t}.{p}.close.pending-fail
        builder(combo).build().use { conn ->
            val closed = CompletableDeferred<HubLinkException?>()
            val reconnecting = CompletableDeferred<HubLinkException?>()
            conn.onClosed { closed.complete(it) }
            conn.onReconnecting { reconnecting.complete(it) }
            conn.start()
            val pending = async(Dispatchers.Default) {
                runCatching { conn.streamValues("InfiniteStream").collect { } }.exceptionOrNull()
            }
            kotlinx.coroutines.delay(100)
            // The server may close before the send is acknowledged (Long Polling's POST).
            runCatching { conn.send("CloseMe", "closing", false) }
            val error = closed.await()
            assertTrue(error is HubLinkException && error.message!!.contains("closing"), "$error")
            val streamError = pending.await()
            assertTrue(streamError is HubLinkException, "the pending stream ended with $streamError")
            assertEquals("Disconnected", conn.state)
            assertTrue(!reconnecting.isCompleted)
        }
    }

    @Test
    fun lostConnectionWithoutPolicyCloses() = test {
        // scenario: any.any.reconnect.no-policy
        builder("ws.json").build().use { conn ->
            val events = mutableListOf<HubLifecycleEvent>()
            val collector = launch(Dispatchers.Default) { conn.events.collect { synchronized(events) { events += it } } }
            val closed = CompletableDeferred<HubLinkException?>()
            conn.onClosed { closed.complete(it) }
            conn.start()
            yield()
            // allowReconnect: true, but no retry policy was given: the connection closes.
            runCatching { conn.send("CloseMe", "gone", true) }
            val error = closed.await()
            assertTrue(error is HubLinkException && error.message!!.contains("gone"), "$error")
            assertEquals("Disconnected", conn.state)
            kotlinx.coroutines.delay(100)
            collector.cancel()
            val kinds = synchronized(events) { events.map { it::class.simpleName } }
            assertEquals(listOf("Closed"), kinds)
        }
    }

    @Test
    fun handshakeTimeout() = test {
        // scenario: any.any.errors.handshake-timeout
        builder("ws.json", "/testhub?faults=delay_handshake_ms:3000").withHandshakeTimeout(300.ms).build().use { conn ->
            val started = System.nanoTime()
            val error = assertThrows<HubTimeoutException> { conn.start() }
            val took = (System.nanoTime() - started) / 1_000_000
            assertTrue(took < 2_500, "start failed after $took ms")
            assertTrue(error.message!!.contains("did not answer the handshake within 300 ms"), error.message)
            assertEquals("Disconnected", conn.state)
        }
    }

    @Test
    fun negotiateStatus() = test {
        // scenario: any.any.errors.negotiate-status
        HubConnectionBuilder.create("$server/no-such-hub").build().use { conn ->
            val error = assertThrows<NegotiationException> { conn.start() }
            assertEquals(404, error.status)
        }
    }

    @Test
    fun stopDuringStart() = test {
        // scenario: any.any.errors.stopped-during-start
        builder("ws.json", "/testhub?faults=delay_handshake_ms:2000").build().use { conn ->
            val start = async(Dispatchers.Default) { runCatching { conn.start() }.exceptionOrNull() }
            kotlinx.coroutines.delay(300)
            conn.stop()
            val error = start.await()
            assertTrue(error is HubCancelledException, "start ended with $error")
            assertTrue(error!!.message!!.contains("stopped during negotiation"), error.message)
            assertEquals("Disconnected", conn.state)
        }
    }

    @Test
    fun notConnected() = test {
        // scenario: any.any.errors.not-connected
        builder("ws.json").build().use { conn ->
            val invoke = assertThrows<InvalidStateException> { conn.invoke<Long>("Echo", 1) }
            assertTrue(invoke.message!!.contains("'Connected' State"), invoke.message)
            val send = assertThrows<InvalidStateException> { conn.send("Echo", 1) }
            assertTrue(send.message!!.contains("'Connected' State"), send.message)
            assertThrows<InvalidStateException> { conn.streamValues("StreamCount", 3).toList() }
            conn.start()
            conn.stop()
            val after = assertThrows<InvalidStateException> { conn.invoke<Long>("Echo", 1) }
            assertTrue(after.message!!.contains("not in the 'Connected' State"), after.message)
        }
    }

    @Test
    fun removeOneHandlerOfSeveral() = test {
        // scenario: any.any.on.remove-one-of-several
        builder("ws.json").build().use { conn ->
            val seen = Channel<String>(Channel.UNLIMITED)
            val first: suspend (String) -> Unit = { seen.send("first $it") }
            val second: suspend (String) -> Unit = { seen.send("second $it") }
            conn.on("Message", first)
            conn.on("message", second)
            conn.on("MESSAGE", first)
            conn.start()
            conn.invoke<Unit>("InvokeWithString", "a")
            val a = List(3) { seen.receive() }
            assertEquals(listOf("first a", "first a", "second a"), a.sorted())
            assertTrue(conn.off("message", first)) // both registrations of `first`, not `second`
            assertTrue(!conn.off("message", first))
            conn.invoke<Unit>("InvokeWithString", "b")
            assertEquals("second b", seen.receive())
            conn.invoke<String>("Echo", "sync") // a round trip after which no other handler can still run
            kotlinx.coroutines.delay(100)
            assertTrue(seen.tryReceive().isFailure)
        }
    }

    @Test
    fun automaticReconnect() = test {
        // scenario: ws.json.close.allow-reconnect, ws.msgpack.close.allow-reconnect
        for (combo in listOf("ws.json", "ws.msgpack")) {
            builder(combo).withAutomaticReconnect(listOf(0.ms, 100.ms)).build().use { conn ->
                val reconnecting = CompletableDeferred<HubLinkException?>()
                conn.onReconnecting { reconnecting.complete(it) }
                val reconnected = launch { conn.events.filterIsInstance<HubLifecycleEvent.Reconnected>().first() }
                conn.start()
                yield()
                val first = conn.connectionId
                runCatching { conn.invoke<Unit>("Abort") }
                reconnecting.await()
                reconnected.join()
                assertEquals("Connected", conn.state)
                assertNotEquals(first, conn.connectionId)
                assertEquals("back", conn.invoke<String>("Echo", "back"))
            }
        }
    }

    @Test
    fun statefulReconnect() = test {
        // scenario: ws.json.stateful.server-drop, ws.msgpack.stateful.server-drop
        for (combo in listOf("ws.json", "ws.msgpack")) {
            builder(combo).withStatefulReconnect().withAutomaticReconnect().build().use { conn ->
                val events = mutableListOf<HubLifecycleEvent>()
                val collector = launch { conn.events.collect { events += it } }
                conn.start()
                val first = conn.connectionId
                runCatching { conn.invoke<Unit>("Abort") }
                assertEquals("still here", conn.invoke<String>("Echo", "still here"))
                assertEquals(first, conn.connectionId)
                assertEquals(emptyList<HubLifecycleEvent>(), events)
                collector.cancel()
            }
        }
    }

    @ParameterizedTest
    @MethodSource("combos")
    fun callOrder(combo: String) = test {
        // scenario: any.any.order.sends-in-order, any.any.order.invoke-before-send
        builder(combo).build().use { conn ->
            conn.start()
            val first = conn.invokeAsync<Long>("Record", -1)
            val sends = (0 until 1000).map { conn.sendAsync("Record", it) }
            sends.reversed().awaitAll()
            assertEquals(0L, first.await())
            assertEquals(listOf(-1L) + (0L until 1000L), conn.invoke<List<Long>>("Recorded"))
        }
    }

    @Test
    fun badValuesAreExceptions() = test {
        // A value the protocol cannot carry is an exception, never a crash.
        builder("ws.json").build().use { conn ->
            conn.start()
            assertThrows<InvalidArgumentException> {
                conn.invoke<Unit>("Echo", HubValue.Timestamp(0, 2_000_000_000u))
            }
            assertThrows<InvalidArgumentException> { conn.invoke<Unit>("Echo", Any()) }
            assertThrows<InvalidArgumentException> { conn.invoke<Int>("Echo", "not a number") }
            assertEquals("ok", conn.invoke<String>("Echo", "ok"))
        }
        assertThrows<InvalidArgumentException> { HubConnectionBuilder.create("ftp://x/hub").build() }
        HubConnectionBuilder.create("$server/testhub").build().use { conn ->
            assertThrows<InvalidStateException> { conn.send("Echo", 1) }
        }
    }
}
