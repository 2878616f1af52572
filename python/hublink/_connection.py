"""The public API: ``HubConnectionBuilder``, ``HubConnection``, ``HubStream``.

Thin adapters over ``hublink._native``: they collect options, create asyncio futures for
the native calls to complete, and turn handler registration into decorators. The protocol
lives in the Rust core.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
from collections import deque
from types import TracebackType
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Deque,
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
    overload,
)

from . import _bridge, _native, _tracing

Handler = Callable[..., Any]
H = TypeVar("H", bound=Callable[..., Any])
AccessTokenFactory = Callable[[], Union[Optional[str], Awaitable[Optional[str]]]]
CloseCallback = Callable[[Optional[BaseException]], Any]
C = TypeVar("C", bound=CloseCallback)


class RetryContext(NamedTuple):
    """What a retry policy knows when it decides the next delay."""

    previous_retry_count: int
    """Consecutive failed attempts so far (0 before the first retry)."""
    elapsed: float
    """Seconds since reconnecting began."""
    retry_reason: BaseException
    """Why a retry is needed: the connection loss, then the last attempt's error."""


class RetryPolicy(Protocol):
    """Decides whether and when to try reconnecting again (seconds, or ``None`` to give
    up). Called on a background thread: it must be quick and must not use asyncio."""

    def next_retry_delay(self, context: RetryContext) -> Optional[float]: ...


class HubConnectionState(str, enum.Enum):
    """The states of a connection, as in the official clients."""

    DISCONNECTED = "Disconnected"
    CONNECTING = "Connecting"
    CONNECTED = "Connected"
    DISCONNECTING = "Disconnecting"
    RECONNECTING = "Reconnecting"


class HubConnectionBuilder:
    """Builds a :class:`HubConnection`, with the option names of the official clients.

    >>> conn = (HubConnectionBuilder()
    ...         .with_url("http://localhost:5000/chat", headers={"X-Tenant": "a"})
    ...         .with_messagepack()
    ...         .build())
    """

    def __init__(self) -> None:
        self._url: Optional[str] = None
        self._options: Dict[str, Any] = {}
        self._headers: List[Tuple[str, str]] = []

    def with_url(
        self,
        url: str,
        *,
        access_token_factory: Optional[AccessTokenFactory] = None,
        headers: Optional[Mapping[str, str]] = None,
        transports: Optional[Union[str, int, Iterable[Union[str, int]]]] = None,
        skip_negotiation: bool = False,
    ) -> "HubConnectionBuilder":
        """The hub URL (``http``/``https``) and how to reach it.

        ``access_token_factory`` (plain or async, returning a token or ``None``) is called
        before every negotiation. ``transports`` limits the transports to try, named as in
        the official clients in any case (``"WebSockets"``, ``"serverSentEvents"``,
        ``"longpolling"``) or as ``HttpTransportType`` flags (``1``, ``2``, ``4`` and sums).
        ``skip_negotiation`` connects a WebSocket straight to the URL.
        """
        self._url = url
        if access_token_factory is not None:
            self.with_access_token_factory(access_token_factory)
        for name, value in (headers or {}).items():
            self.with_header(name, value)
        if transports is not None:
            self.with_transports(transports)
        if skip_negotiation:
            self._options["skip_negotiation"] = True
        return self

    def with_access_token_factory(self, factory: AccessTokenFactory) -> "HubConnectionBuilder":
        """Supplies the bearer token (plain or async callable), before every negotiation."""
        self._options["access_token_factory"] = factory
        return self

    def with_header(self, name: str, value: str) -> "HubConnectionBuilder":
        """Adds a header to every HTTP request and WebSocket upgrade."""
        self._headers.append((str(name), str(value)))
        return self

    def with_transports(self, transports: Union[str, int, Iterable[Union[str, int]]]) -> "HubConnectionBuilder":
        """The transports the client may use: ``"WebSockets"``, ``"ServerSentEvents"``,
        ``"LongPolling"`` (any case), or ``HttpTransportType`` flags (``1 | 4``)."""
        if isinstance(transports, (str, int)):
            transports = [transports]
        self._options["transports"] = [str(t) for t in transports]
        return self

    def with_messagepack(self) -> "HubConnectionBuilder":
        """Uses the MessagePack hub protocol (JSON is the default)."""
        self._options["messagepack"] = True
        return self

    def with_hub_protocol(self, protocol: str) -> "HubConnectionBuilder":
        """``"json"`` (the default) or ``"messagepack"``."""
        name = protocol.lower()
        if name not in ("json", "messagepack"):
            raise ValueError(f"unknown hub protocol {protocol!r}: use 'json' or 'messagepack'")
        self._options["messagepack"] = name == "messagepack"
        return self

    def with_server_timeout(self, seconds: float) -> "HubConnectionBuilder":
        """Closes the connection when nothing arrives for this long (30 s by default)."""
        self._options["server_timeout"] = float(seconds)
        return self

    def with_keep_alive_interval(self, seconds: float) -> "HubConnectionBuilder":
        """Sends a ping when nothing was sent for this long (15 s by default)."""
        self._options["keep_alive_interval"] = float(seconds)
        return self

    def with_handshake_timeout(self, seconds: float) -> "HubConnectionBuilder":
        """How long the server has to answer the handshake (15 s by default)."""
        self._options["handshake_timeout"] = float(seconds)
        return self

    def with_http_timeout(self, seconds: float) -> "HubConnectionBuilder":
        """The timeout of negotiate and send requests (100 s by default)."""
        self._options["http_timeout"] = float(seconds)
        return self

    def with_max_message_size(self, size: int) -> "HubConnectionBuilder":
        """The largest message accepted from the server, in bytes (1 MiB by default)."""
        self._options["max_message_size"] = int(size)
        return self

    def with_stream_buffer_capacity(self, items: int) -> "HubConnectionBuilder":
        """How many received items each server stream buffers (1024 by default, at least 1).

        While a stream's buffer is full the connection reads nothing from the server (the
        server feels TCP backpressure; nothing is dropped), so its other messages wait too.
        """
        self._options["stream_buffer_capacity"] = int(items)
        return self

    def with_automatic_reconnect(
        self,
        policy: Union[
            None, Sequence[float], RetryPolicy, Callable[[RetryContext], Optional[float]]
        ] = None,
    ) -> "HubConnectionBuilder":
        """Reconnects automatically when the connection is lost: after 0, 2, 10 and 30
        seconds by default, after each of ``policy``'s delays (seconds) when it is a
        sequence, or as a :class:`RetryPolicy` (or a callable taking a
        :class:`RetryContext`) decides."""
        for key in ("automatic_reconnect", "reconnect_delays", "retry_policy"):
            self._options.pop(key, None)
        if policy is None:
            self._options["automatic_reconnect"] = True
        elif isinstance(policy, (list, tuple)):
            self._options["reconnect_delays"] = [float(d) for d in policy]
        elif callable(policy) or hasattr(policy, "next_retry_delay"):
            self._options["retry_policy"] = policy
        else:
            raise TypeError("policy must be None, a sequence of seconds, or a RetryPolicy")
        return self

    def with_retry_on_start(self, retry: bool = True) -> "HubConnectionBuilder":
        """Also retries the first ``start()`` under the reconnect policy."""
        self._options["retry_on_start"] = retry
        return self

    def with_stateful_reconnect(self, buffer_size: Optional[int] = None) -> "HubConnectionBuilder":
        """Asks for stateful reconnect (WebSockets): a dropped transport resumes the same
        connection and unacknowledged messages are replayed; ``buffer_size`` bytes of
        replay buffer (100 000 by default)."""
        self._options["stateful_reconnect"] = True
        if buffer_size is not None:
            self._options["stateful_reconnect_buffer_size"] = int(buffer_size)
        return self

    def with_message_content_logging(self, enabled: bool = True) -> "HubConnectionBuilder":
        """Lets trace-level logs show message contents (off by default)."""
        self._options["message_content_logging"] = enabled
        return self

    def with_root_certificate_pem(self, pem: str) -> "HubConnectionBuilder":
        """Also trusts the root certificate(s) in ``pem``, next to the operating system's,
        for negotiate and every transport, the WebSocket included."""
        self._options.setdefault("root_certificates_pem", []).append(str(pem))
        return self

    def with_client_certificate_pem(self, chain_pem: str, key_pem: str) -> "HubConnectionBuilder":
        """Presents this client certificate (``chain_pem``, leaf first) with its private key
        (``key_pem``) when the server asks for one."""
        self._options["client_certificate_pem"] = (str(chain_pem), str(key_pem))
        return self

    def danger_accept_invalid_certs(self, accept: bool = True) -> "HubConnectionBuilder":
        """DANGEROUS: accepts any server certificate, so anyone on the path can read and
        change the traffic, tokens included. For tests only."""
        self._options["danger_accept_invalid_certs"] = bool(accept)
        return self

    def with_proxy(self, url: str, *, no_proxy: str = "") -> "HubConnectionBuilder":
        """Sends negotiate and every transport through this HTTP proxy
        (``http://[user:password@]host:port``), the WebSocket in a ``CONNECT`` tunnel, except
        for the hosts ``no_proxy`` lists (``NO_PROXY`` syntax: host names with their
        subdomains, IP addresses, networks, ``*``). Without it the environment's proxy is used
        (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``)."""
        self._options["proxy"] = (str(url), str(no_proxy))
        return self

    def with_no_proxy(self) -> "HubConnectionBuilder":
        """Connects without any proxy, whatever the environment says."""
        self._options["proxy"] = None
        return self

    def build(self) -> "HubConnection":
        """Builds the connection (not started). Raises ``InvalidArgumentError`` for a
        missing or unusable URL."""
        if self._url is None:
            from ._errors import InvalidArgumentError

            raise InvalidArgumentError("The 'url' argument is required: call with_url() first.")
        native = _native.HubConnection(self._url, headers=list(self._headers), **self._options)
        return HubConnection(native, _tracing.CallTarget(self._url))


def _returns_result(handler: Callable[..., Any]) -> bool:
    """Whether a handler may answer client-result requests: all but those annotated
    ``-> None``."""
    try:
        annotation = inspect.signature(handler).return_annotation
    except (TypeError, ValueError):
        return True
    return annotation not in (None, type(None), "None")


class HubStream(AsyncIterator[Any]):
    """The items of a server-to-client stream, in order.

    The invocation is sent when the stream is created. Leaving ``async for`` early (or
    :meth:`cancel`) cancels the stream on the server.
    """

    __slots__ = ("_native", "_items", "_ended", "_span")

    def __init__(self, native: _native.StreamReader, span: _tracing.CallSpan = _tracing.NO_SPAN) -> None:
        self._native = native
        self._items: Deque[Any] = deque()
        self._ended = False
        self._span = span

    def __aiter__(self) -> "HubStream":
        return self

    async def __anext__(self) -> Any:
        items = self._items
        if not items:
            if self._ended:
                raise StopAsyncIteration
            future: "asyncio.Future[Optional[List[Any]]]" = asyncio.get_running_loop().create_future()
            self._native.next_batch(_bridge.current(), future)
            try:
                batch = await future
            except BaseException as error:
                self._span.end(error)
                raise
            if batch is None:
                self._ended = True
                self._span.end()
                raise StopAsyncIteration
            items.extend(batch)
        return items.popleft()

    def cancel(self) -> None:
        """Cancels the stream: the server is told, iteration ends."""
        self._items.clear()
        self._ended = True
        self._span.end()
        self._native.cancel()

    async def aclose(self) -> None:
        """Same as :meth:`cancel` (for ``contextlib.aclosing``)."""
        self.cancel()


class HubConnection:
    """A connection to a SignalR hub. Build one with :class:`HubConnectionBuilder`.

    ``async with connection:`` starts it and stops it.
    """

    def __init__(self, native: _native.HubConnection, call_target: _tracing.CallTarget) -> None:
        self._native = native
        self._call_target = call_target

    def __repr__(self) -> str:
        return repr(self._native)

    @property
    def state(self) -> HubConnectionState:
        return HubConnectionState(self._native.state)

    @property
    def connection_id(self) -> Optional[str]:
        """The id the server gave this connection, while connected."""
        return self._native.connection_id

    @property
    def transport(self) -> Optional[str]:
        """``"WebSockets"``, ``"ServerSentEvents"`` or ``"LongPolling"`` while connected."""
        return self._native.transport

    @property
    def protocol(self) -> str:
        """``"json"`` or ``"messagepack"``."""
        return self._native.protocol

    async def start(self) -> None:
        """Connects: negotiates, starts a transport (with fallback) and handshakes."""
        _native.sync_log_level()
        future: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        self._native.start(_bridge.current(), future)
        await future

    async def stop(self) -> None:
        """Closes the connection; pending calls fail with ``ConnectionClosedError``."""
        future: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        self._native.stop(_bridge.current(), future)
        await future

    def invoke(self, method: str, *args: Any) -> "asyncio.Future[Any]":
        """Invokes a hub method; the returned future resolves to its result. An async
        iterable argument is streamed to the server (a client-to-server stream).

        The call is sent when ``invoke`` is called, not when the future is awaited: calls
        made one after another reach the server in that order, as in the official clients.
        """
        future: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
        with self._call_target.start(method) as call:
            self._native.invoke(_bridge.current(), future, method, args, *call.trace)
        call.end_with(future)
        return future

    def send(self, method: str, *args: Any) -> "asyncio.Future[None]":
        """Invokes a hub method without waiting for its result (fire-and-forget); the returned
        future resolves once the invocation is written. Sent when ``send`` is called."""
        future: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        with self._call_target.start(method) as call:
            self._native.send(_bridge.current(), future, method, args, *call.trace)
        call.end_with(future)
        return future

    def stream(self, method: str, *args: Any) -> HubStream:
        """Starts a server-to-client stream (the invocation is sent now):
        ``async for item in conn.stream("Counter", 10)``."""
        with self._call_target.start(method) as call:
            native = self._native.stream(_bridge.current(), method, args, *call.trace)
        return HubStream(native, call)

    @overload
    def on(self, method: str) -> Callable[[H], H]: ...

    @overload
    def on(self, method: str, handler: H) -> H: ...

    def on(self, method: str, handler: Optional[H] = None) -> Union[H, Callable[[H], H]]:
        """Registers a handler (plain or async) for a method the server calls; usable as a
        decorator. Method names match case-insensitively.

        What the handler returns answers the server's client-result requests, and what it
        raises is sent back as the error. A handler annotated ``-> None`` never answers.
        """

        def register(handler: H) -> H:
            self._native.on(method, handler, _returns_result(handler))
            return handler

        return register if handler is None else register(handler)

    def off(self, method: str, handler: Optional[Handler] = None) -> None:
        """Removes ``handler`` from ``method``, or every handler of ``method``."""
        self._native.off(method, handler)

    def on_close(self, callback: C) -> C:
        """Calls ``callback(error)`` (plain or async) when the connection closes; ``error``
        is ``None`` after :meth:`stop`. Usable as a decorator."""
        self._native.on_event("close", callback)
        return callback

    def on_reconnecting(self, callback: C) -> C:
        """Calls ``callback(error)`` (plain or async) when an automatic reconnect begins.
        Usable as a decorator."""
        self._native.on_event("reconnecting", callback)
        return callback

    def on_reconnected(self, callback: Callable[[Optional[str]], Any]) -> Any:
        """Calls ``callback(connection_id)`` (plain or async) after a successful automatic
        reconnect. Usable as a decorator."""
        self._native.on_event("reconnected", callback)
        return callback

    async def __aenter__(self) -> "HubConnection":
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        await self.stop()
