"""hublink: an asyncio-native SignalR client over the hublink Rust core.

.. code-block:: python

    conn = (HubConnectionBuilder()
            .with_url("http://localhost:5000/chat")
            .with_messagepack()
            .build())

    @conn.on("ReceiveMessage")
    async def on_message(user: str, text: str) -> None: ...

    async with conn:
        total = await conn.invoke("Add", 1, 2)
        async for item in conn.stream("Counter", 10): ...

The core's log records go to the ``hublink`` logger of :mod:`logging`.
"""

import atexit

from ._connection import (
    HubConnection,
    HubConnectionBuilder,
    HubConnectionState,
    HubStream,
    RetryContext,
    RetryPolicy,
)
from ._errors import (
    AbortError,
    ConnectionClosedError,
    HandshakeError,
    HubError,
    HubLinkError,
    InvalidArgumentError,
    InvalidStateError,
    NegotiationError,
    ProtocolError,
    TimeoutError,
    TransportError,
)
from ._native import Extension, __version__, shutdown, sync_log_level

sync_log_level()
# Stop the core's runtime before the interpreter goes away (its threads must not outlive it).
atexit.register(shutdown)
del sync_log_level, shutdown

__all__ = [
    "HubConnectionBuilder",
    "HubConnection",
    "HubConnectionState",
    "HubStream",
    "RetryContext",
    "RetryPolicy",
    "Extension",
    "HubLinkError",
    "HubError",
    "ConnectionClosedError",
    "NegotiationError",
    "TransportError",
    "HandshakeError",
    "InvalidStateError",
    "InvalidArgumentError",
    "ProtocolError",
    "TimeoutError",
    "AbortError",
    "__version__",
]
