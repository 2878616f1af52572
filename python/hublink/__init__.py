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

from ._connection import (
    HubConnection,
    HubConnectionBuilder,
    HubConnectionState,
    HubStream,
    RetryContext,
    RetryPolicy,
)
from ._errors import (
    ConnectionClosedError,
    HandshakeError,
    HubError,
    HubLinkError,
    InvalidArgumentError,
    InvalidStateError,
    NegotiationError,
    ProtocolError,
    TransportError,
)
from ._native import Extension, __version__, sync_log_level

sync_log_level()
del sync_log_level

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
    "__version__",
]
