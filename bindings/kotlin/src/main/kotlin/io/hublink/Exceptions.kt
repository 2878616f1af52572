package io.hublink

import io.hublink.ffi.HubException

/**
 * A hublink failure, one subclass per kind of the core's errors: the core's text as [message]
 * and, when an HTTP answer caused it, the HTTP [status].
 */
sealed class HubLinkException(message: String, val status: Int?, cause: Throwable? = null) :
    Exception(message, cause)

/** Negotiation failed (a refused status, an error answer, a failing access-token provider). */
class NegotiationException(message: String, status: Int?, cause: Throwable? = null) : HubLinkException(message, status, cause)

/** A transport failed to start, or failed while running. */
class TransportException(message: String, status: Int?, cause: Throwable? = null) : HubLinkException(message, status, cause)

/** The server refused the hub handshake. */
class HandshakeException(message: String, status: Int?, cause: Throwable? = null) : HubLinkException(message, status, cause)

/** The handshake, an HTTP request, or the server's silence took longer than allowed. */
class HubTimeoutException(message: String, status: Int?, cause: Throwable? = null) : HubLinkException(message, status, cause)

/** The hub method failed on the server; the text is the server's. */
class HubMethodException(message: String, status: Int?, cause: Throwable? = null) : HubLinkException(message, status, cause)

/** The connection closed before the call completed, or the server closed it with an error. */
class ConnectionClosedException(message: String, status: Int?, cause: Throwable? = null) : HubLinkException(message, status, cause)

/** Not possible in the connection's current state. */
class InvalidStateException(message: String, status: Int?, cause: Throwable? = null) : HubLinkException(message, status, cause)

/** An option or argument cannot be used (a value the protocol cannot carry, a result of the wrong type). */
class InvalidArgumentException(message: String, status: Int?, cause: Throwable? = null) : HubLinkException(message, status, cause)

/** The server broke the SignalR protocol. */
class ProtocolException(message: String, status: Int?, cause: Throwable? = null) : HubLinkException(message, status, cause)

/** The operation was cancelled (`stop()` during `start()`, a cancelled stream). */
class HubCancelledException(message: String, status: Int?, cause: Throwable? = null) : HubLinkException(message, status, cause)

/** A kind this version of the binding does not know. */
class OtherHubException(message: String, status: Int?, cause: Throwable? = null) : HubLinkException(message, status, cause)

/** The generated exception as this layer's. */
fun HubException.toHubLink(): HubLinkException = when (this) {
    is HubException.Negotiation -> NegotiationException(reason, status?.toInt(), this)
    is HubException.Transport -> TransportException(reason, status?.toInt(), this)
    is HubException.Handshake -> HandshakeException(reason, status?.toInt(), this)
    is HubException.Timeout -> HubTimeoutException(reason, status?.toInt(), this)
    is HubException.Hub -> HubMethodException(reason, status?.toInt(), this)
    is HubException.ConnectionClosed -> ConnectionClosedException(reason, status?.toInt(), this)
    is HubException.InvalidState -> InvalidStateException(reason, status?.toInt(), this)
    is HubException.InvalidArgument -> InvalidArgumentException(reason, status?.toInt(), this)
    is HubException.Protocol -> ProtocolException(reason, status?.toInt(), this)
    is HubException.Cancelled -> HubCancelledException(reason, status?.toInt(), this)
    is HubException.Other -> OtherHubException(reason, status?.toInt(), this)
}

/** Runs [block], turning the generated exceptions into [HubLinkException]s. */
@PublishedApi
internal inline fun <T> mapped(block: () -> T): T = try {
    block()
} catch (e: HubException) {
    throw e.toHubLink()
}
