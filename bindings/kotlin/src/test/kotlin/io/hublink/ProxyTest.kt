package io.hublink

import java.io.File
import java.net.ServerSocket
import java.net.Socket
import java.nio.file.Files
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** The proxy options through Debian's tinyproxy (scripts/test.sh installs it) to the test server. */
class ProxyTest {
    private val directory: File = Files.createTempDirectory("hublink-tinyproxy").toFile()
    private val port = ServerSocket(0).use { it.localPort }
    private val log = File(directory, "tinyproxy.log")
    private val proxy: Process = run {
        val config = File(directory, "tinyproxy.conf")
        config.writeText(
            "Port $port\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nLogLevel Connect\nLogFile \"${log.path}\"\n",
        )
        val executable = listOf("/usr/bin/tinyproxy", "/usr/sbin/tinyproxy").firstOrNull { File(it).exists() }
            ?: error("tinyproxy is not installed (apt-get install tinyproxy-bin)")
        ProcessBuilder(executable, "-d", "-c", config.path).redirectErrorStream(true)
            .redirectOutput(File(directory, "output.txt")).start()
    }

    init {
        val deadline = System.nanoTime() + 10_000_000_000
        while (runCatching { Socket("127.0.0.1", port).close() }.isFailure) {
            check(proxy.isAlive) { "tinyproxy exited" }
            check(System.nanoTime() < deadline) { "tinyproxy did not listen in time" }
            Thread.sleep(20)
        }
    }

    @AfterEach
    fun stopProxy() {
        proxy.destroyForcibly().waitFor()
        directory.deleteRecursively()
    }

    private fun requests(): List<String> = log.takeIf { it.exists() }?.readLines().orEmpty()
        .filter { "Request (file descriptor" in it }.map { it.substringAfter("): ") }

    private val hub = HubConnectionTest.server + "/testhub"
    private val authority = HubConnectionTest.server.removePrefix("http://")

    @Test
    fun theWebSocketGoesThroughTheProxyInAConnectTunnel() = runBlocking {
        // scenario: ws.json.proxy.connect-tunnel
        withTimeout(60_000) {
            HubConnectionBuilder.create(hub).withTransports(TransportType.WebSockets)
                .withProxy("http://127.0.0.1:$port").build().use { conn ->
                    conn.start()
                    assertEquals("via tinyproxy", conn.invoke<String>("Echo", "via tinyproxy"))
                    conn.stop()
                }
        }
        assertTrue("CONNECT $authority HTTP/1.1" in requests(), requests().toString())
    }

    @Test
    fun noProxyHostsBypassItAndARefusalNamesItsStatus() = runBlocking {
        // scenario: any.any.proxy.no-proxy, any.any.proxy.refused
        withTimeout(60_000) {
            HubConnectionBuilder.create(hub).withTransports(TransportType.LongPolling)
                .withProxy("http://127.0.0.1:$port", noProxy = "127.0.0.1").build().use { conn ->
                    conn.start()
                    assertEquals("direct", conn.invoke<String>("Echo", "direct"))
                    conn.stop()
                }
            assertEquals(emptyList<String>(), requests())
            val conn = HubConnectionBuilder.create(hub).withTransports(TransportType.WebSockets)
                .withSkipNegotiation().withProxy("http://127.0.0.1:1").build()
            val refused = conn.use { assertThrows<TransportException> { it.start() } }
            assertTrue("proxy 127.0.0.1:1: could not connect" in refused.message.orEmpty(), refused.message)
        }
    }
}
