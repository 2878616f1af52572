"""The exceptions hublink raises. Every one is a :class:`HubLinkError`; the class follows the
core's error kind, so a Python, Kotlin, Swift or JavaScript user sees the same cases."""

from __future__ import annotations

import builtins
from typing import Optional


class HubLinkError(Exception):
    """The base class of every hublink error.

    ``status`` is the HTTP status of the answer that caused the error, when one did (a
    refused negotiate, a 401, a Long Polling 404); ``kind`` names the core's error kind
    (``"Negotiation"``, ``"Timeout"``, …).
    """

    def __init__(self, message: str, status: Optional[int] = None, kind: str = "Other") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


class HubError(HubLinkError):
    """The hub method failed on the server; the message is the server's text."""


class ConnectionClosedError(HubLinkError):
    """The connection closed (or was stopped) before the call completed."""


class NegotiationError(HubLinkError):
    """Negotiation failed; ``status`` is the HTTP status when there was one."""


class TransportError(HubLinkError):
    """No transport could be started, or the running one failed."""


class HandshakeError(HubLinkError):
    """The server refused the hub handshake, or answered it with something unusable."""


class TimeoutError(HubLinkError, builtins.TimeoutError):  # noqa: A001 - the official name
    """Something took longer than allowed: the handshake, an HTTP request, or the server's
    silence beyond the server timeout. Also a built-in :class:`TimeoutError`."""


class AbortError(HubLinkError):
    """The operation was cancelled: ``stop()`` during ``start()``."""


class InvalidStateError(HubLinkError):
    """The call is not possible in the connection's current state (e.g. not connected)."""


class InvalidArgumentError(HubLinkError, ValueError):
    """An option or argument cannot be used (a bad URL, a value the protocol cannot carry)."""


class ProtocolError(HubLinkError):
    """The server sent something that breaks the SignalR protocol."""
