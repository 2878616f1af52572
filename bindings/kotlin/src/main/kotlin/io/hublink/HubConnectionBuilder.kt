package io.hublink

import io.hublink.ffi.AccessTokenProvider
import io.hublink.ffi.CallbackException
import io.hublink.ffi.ConnectionOptions
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds

/** A transport: what `withTransports` takes (the core parses the names). */
enum class TransportType(val wireName: String) {
    WebSockets("WebSockets"),
    ServerSentEvents("ServerSentEvents"),
    LongPolling("LongPolling"),
}

/**
 * Builds a [HubConnection]:
 * `HubConnectionBuilder.create(url).withAutomaticReconnect().withMessagePack().build()`.
 */
class HubConnectionBuilder private constructor(private val url: String) {
    private var transports: List<String> = emptyList()
    private var protocol = "json"
    private val headers = LinkedHashMap<String, String>()
    private var skipNegotiation = false
    private var reconnectDelays: List<Duration>? = null
    private var statefulReconnect = false
    private var serverTimeout: Duration? = null
    private var keepAliveInterval: Duration? = null
    private var handshakeTimeout: Duration? = null
    private var httpTimeout: Duration? = null
    private var maxMessageSize: Long? = null
    private var accessToken: (suspend () -> String?)? = null
    private val rootCertificatesPem = ArrayList<String>()
    private var clientCertificatePem: Pair<String, String>? = null
    private var dangerAcceptInvalidCerts = false
    private var proxyUrl: String? = null
    private var proxyBypass = ""
    private var noProxyAtAll = false

    companion object {
        @JvmStatic
        fun create(url: String) = HubConnectionBuilder(url)
    }

    fun withTransports(vararg transports: TransportType) = apply { this.transports = transports.map { it.wireName } }
    fun withMessagePack() = apply { protocol = "messagepack" }
    fun withJson() = apply { protocol = "json" }
    fun withHeader(name: String, value: String) = apply { headers[name] = value }
    fun withSkipNegotiation() = apply { skipNegotiation = true }

    /** Reconnects after 0, 2, 10 and 30 seconds (the official clients' delays). */
    fun withAutomaticReconnect() = apply { reconnectDelays = emptyList() }

    /** Reconnects after each of [delays], then gives up. */
    fun withAutomaticReconnect(delays: List<Duration>) = apply {
        require(delays.isNotEmpty()) { "give at least one delay" }
        reconnectDelays = delays
    }

    fun withStatefulReconnect() = apply { statefulReconnect = true }
    fun withServerTimeout(timeout: Duration) = apply { serverTimeout = timeout }
    fun withKeepAliveInterval(interval: Duration) = apply { keepAliveInterval = interval }
    fun withHandshakeTimeout(timeout: Duration) = apply { handshakeTimeout = timeout }
    fun withHttpTimeout(timeout: Duration) = apply { httpTimeout = timeout }
    fun withMaxMessageSize(bytes: Long) = apply { maxMessageSize = bytes }

    /** Also trusts the root certificate(s) in [pem], next to the system's, on every transport. */
    fun withRootCertificatePem(pem: String) = apply { rootCertificatesPem.add(pem) }

    /** Presents this client certificate ([chainPem], leaf first, and [keyPem]) when asked. */
    fun withClientCertificatePem(chainPem: String, keyPem: String) = apply { clientCertificatePem = chainPem to keyPem }

    /** DANGEROUS: accepts any server certificate, so anyone on the path can read the traffic. Tests only. */
    fun dangerAcceptInvalidCerts(accept: Boolean = true) = apply { dangerAcceptInvalidCerts = accept }

    /**
     * Sends negotiate and every transport through this HTTP proxy (`http://[user:password@]host:port`),
     * the WebSocket in a `CONNECT` tunnel, except for the hosts [noProxy] lists (`NO_PROXY` syntax).
     * Without it the environment's proxy is used (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`).
     */
    fun withProxy(url: String, noProxy: String = "") = apply {
        proxyUrl = url
        proxyBypass = noProxy
    }

    /** Connects without any proxy, whatever the environment says. */
    fun withNoProxy() = apply {
        proxyUrl = null
        noProxyAtAll = true
    }

    /** Called for every negotiate (so every reconnect); `null` sends no token. */
    fun withAccessTokenProvider(provider: suspend () -> String?) = apply { accessToken = provider }

    private fun ms(d: Duration?): ULong? = d?.let {
        require(!it.isNegative()) { "durations must not be negative" }
        it.inWholeMilliseconds.toULong()
    }

    fun build(): HubConnection {
        val options = ConnectionOptions(
            url = url,
            transports = transports,
            protocol = protocol,
            headers = headers.toMap(),
            skipNegotiation = skipNegotiation,
            reconnectDelaysMs = reconnectDelays?.map { ms(it)!! },
            statefulReconnect = statefulReconnect,
            serverTimeoutMs = ms(serverTimeout),
            keepAliveIntervalMs = ms(keepAliveInterval),
            handshakeTimeoutMs = ms(handshakeTimeout),
            httpTimeoutMs = ms(httpTimeout),
            maxMessageSize = maxMessageSize?.also { require(it >= 0) }?.toULong(),
            rootCertificatesPem = rootCertificatesPem.toList(),
            clientCertificatePem = clientCertificatePem?.first,
            clientKeyPem = clientCertificatePem?.second,
            dangerAcceptInvalidCerts = dangerAcceptInvalidCerts,
            proxyUrl = proxyUrl,
            proxyBypass = proxyBypass,
            noProxyAtAll = noProxyAtAll,
        )
        val provider = accessToken?.let { factory ->
            object : AccessTokenProvider {
                override suspend fun token(): String? = try {
                    factory()
                } catch (e: Throwable) {
                    throw CallbackException.Failed(e.message ?: e.toString())
                }
            }
        }
        return HubConnection(mapped { io.hublink.ffi.HubConnection(options, provider) })
    }
}

/** Milliseconds as a [Duration] (for `withAutomaticReconnect(listOf(0.ms, 100.ms))`). */
val Int.ms: Duration get() = this.milliseconds
