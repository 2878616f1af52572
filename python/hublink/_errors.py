"""The exceptions hublink raises. Every one is a :class:`HubLinkError`."""

from __future__ import annotations

from typing import Optional


class HubLinkError(Exception):
    """The base class of every hublink error."""


class HubError(HubLinkError):
    """The hub method failed on the server; the message is the server's text."""


class ConnectionClosedError(HubLinkError):
    """The connection closed (or was stopped) before the call completed."""


class NegotiationError(HubLinkError):
    """Negotiation failed; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class TransportError(HubLinkError):
    """No transport could be started, or the running one failed."""


class HandshakeError(HubLinkError):
    """The server refused the hub handshake, or never answered it."""


class InvalidStateError(HubLinkError):
    """The call is not possible in the connection's current state (e.g. not connected)."""


class InvalidArgumentError(HubLinkError, ValueError):
    """An option or argument cannot be used (a bad URL, a value the protocol cannot carry)."""


class ProtocolError(HubLinkError):
    """The server sent something that breaks the SignalR protocol."""
