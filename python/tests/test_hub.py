"""The Python binding against the in-repo test server, every transport × protocol.

Scenario names: tests/scenarios/scenarios.txt ({t}.{p} = each combination of COMBOS).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from typing import Any, AsyncIterator, List, Optional, Tuple

import pytest
from conftest import NAMES, builder, http_get

import hublink
from hublink import HubConnectionState

Combo = Tuple[str, str]
UTC = datetime.timezone.utc


async def test_invoke_echo(server: str, combo: Combo) -> None:
    # scenario: {t}.{p}.invoke.echo, {t}.{p}.invoke.echo-unicode, {t}.{p}.connect.transport-name
    transport, protocol = combo
    conn = builder(server, transport, protocol).build()
    async with conn:
        assert conn.state is HubConnectionState.CONNECTED
        assert conn.transport == NAMES[transport]
        assert await conn.invoke("Echo", "你好，世界！") == "你好，世界！"
        assert await conn.invoke("echo", "case-insensitive") == "case-insensitive"
        assert await conn.invoke("GetActiveTransportName") == NAMES[transport]
    assert conn.state is HubConnectionState.DISCONNECTED


async def test_connection_id(server: str, combo: Combo) -> None:
    # scenario: {t}.{p}.connect.connection-id
    conn = builder(server, *combo).build()
    assert conn.connection_id is None
    async with conn:
        assert conn.connection_id == await conn.invoke("GetCallerConnectionId")
    assert conn.connection_id is None


async def test_send_and_on(server: str, combo: Combo) -> None:
    # scenario: {t}.{p}.on.invoke-with-string, {t}.{p}.send.fire-and-forget
    conn = builder(server, *combo).build()
    plain: "asyncio.Queue[str]" = asyncio.Queue()
    from_async: "asyncio.Queue[str]" = asyncio.Queue()

    @conn.on("message")
    def on_message(text: str) -> None:
        plain.put_nowait(text)

    @conn.on("Message")
    async def on_message_async(text: str) -> None:
        await asyncio.sleep(0)
        from_async.put_nowait(text)

    async with conn:
        assert await conn.send("InvokeWithString", "hi") is None
        assert await asyncio.wait_for(plain.get(), 10) == "hi"
        assert await asyncio.wait_for(from_async.get(), 10) == "hi"
        conn.off("Message", on_message)
        await conn.send("InvokeWithString", "again")
        assert await asyncio.wait_for(from_async.get(), 10) == "again"
        assert plain.empty()
        assert await conn.invoke("Echo", 1) == 1


async def test_concurrent_invocations(server: str, combo: Combo) -> None:
    # scenario: {t}.{p}.invoke.concurrent
    async with builder(server, *combo).build() as conn:
        results = await asyncio.gather(*(conn.invoke("Echo", i) for i in range(50)))
        assert results == list(range(50))


async def test_server_streams(server: str, combo: Combo) -> None:
    # scenario: {t}.{p}.stream.server, {t}.{p}.stream.count, {t}.{p}.stream.empty
    async with builder(server, *combo).build() as conn:
        assert [x async for x in conn.stream("Stream")] == ["a", "b", "c"]
        assert [x async for x in conn.stream("StreamCount", 100)] == list(range(100))
        assert [x async for x in conn.stream("EmptyStream")] == []


async def test_stream_error(server: str, combo: Combo) -> None:
    # scenario: {t}.{p}.stream.error
    async with builder(server, *combo).build() as conn:
        with pytest.raises(hublink.HubError, match="InvalidOperationException: boom"):
            async for _ in conn.stream("StreamThrowException", "boom"):
                pass
        assert await conn.invoke("Echo", "alive") == "alive"


async def test_stream_cancel(server: str, combo: Combo) -> None:
    # scenario: {t}.{p}.stream.cancel
    conn = builder(server, *combo).build()
    canceled = asyncio.get_running_loop().create_future()
    conn.on("StreamCanceled", lambda: canceled.done() or canceled.set_result(True))
    async with conn:

        async def read_forever() -> None:
            async for _ in conn.stream("InfiniteStream"):
                pass

        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(read_forever(), 0.5)
        assert await asyncio.wait_for(canceled, 10) is True

        # Leaving the loop with `break` cancels too, and the connection stays usable.
        seen: List[int] = []
        async for n in conn.stream("StreamCount", 1_000_000):
            seen.append(n)
            if n == 2:
                break
        assert seen == [0, 1, 2]
        assert await conn.invoke("Echo", "after") == "after"


async def test_upload_streams(server: str, combo: Combo) -> None:
    # scenario: {t}.{p}.stream.upload, {t}.{p}.stream.upload-sum, {t}.{p}.stream.upload-error
    async def words() -> AsyncIterator[str]:
        for word in ["a", "b", "c"]:
            await asyncio.sleep(0)
            yield word

    async def numbers() -> AsyncIterator[int]:
        for n in range(1, 11):
            yield n

    async def failing() -> AsyncIterator[str]:
        yield "x"
        raise RuntimeError("Something bad")

    async with builder(server, *combo).build() as conn:
        assert await conn.invoke("StreamingConcat", words()) == "abc"
        assert await conn.invoke("UploadSum", numbers()) == 55
        with pytest.raises(hublink.HubError, match="HubException: RuntimeError: Something bad"):
            await conn.invoke("StreamingConcat", failing())


async def test_client_results(server: str, combo: Combo) -> None:
    # scenario: {t}.{p}.client-result.value, {t}.{p}.client-result.error, {t}.{p}.client-result.no-handler
    conn = builder(server, *combo).build()
    async with conn:
        url = f"{server}/clientresult/{conn.connection_id}"
        assert await asyncio.to_thread(http_get, url) == "Client didn't provide a result."

        conn.on("Result", lambda: 10)
        assert await asyncio.to_thread(http_get, url) == "10"
        conn.off("Result")

        @conn.on("Result")
        async def fails() -> int:
            raise ValueError("from callback")

        assert await asyncio.to_thread(http_get, url) == "ValueError: from callback"
        conn.off("result")

        @conn.on("Result")
        def no_result() -> None:
            return None

        assert await asyncio.to_thread(http_get, url) == "Client didn't provide a result."
        conn.off("result")

        @conn.on("Result")
        def void_fails() -> None:
            raise ValueError("from a void callback")

        # As the official client: the failure answers the request.
        assert await asyncio.to_thread(http_get, url) == "ValueError: from a void callback"


async def test_complex_values(server: str, combo: Combo) -> None:
    # scenario: {t}.{p}.invoke.complex-object
    transport, protocol = combo
    async with builder(server, transport, protocol).build() as conn:
        obj = await conn.invoke("SendComplexObject")
        assert obj["String"] == "hello world"
        assert obj["IntArray"] == [1, 2, 3]
        assert obj["Guid"] == "00010203-0405-0607-0706-050403020100"
        when = datetime.datetime(2000, 1, 1, tzinfo=UTC)
        if protocol == "msgpack":
            assert obj["ByteArray"] == b"\x01\x02\x03"
            assert obj["DateTime"] == when
        else:  # JSON carries bytes as base64 and dates as ISO-8601 text, as .NET does
            assert obj["ByteArray"] == "AQID"
            assert obj["DateTime"] == "2000-01-01T00:00:00Z"

        value = {
            "bytes": b"\x00\xff",
            "when": datetime.datetime(2024, 2, 29, 12, 30, 15, 250000, tzinfo=UTC),
            "big": 2**64 - 1,
            "small": -(2**63),
            "float": 1.5,
            "nested": [None, True, False, {"k": [1, "two"]}],
            "tuple": (1, 2),
        }
        echoed = await conn.invoke("EchoComplexObject", value)
        assert echoed["big"] == 2**64 - 1 and echoed["small"] == -(2**63)
        assert echoed["nested"] == [None, True, False, {"k": [1, "two"]}]
        assert echoed["tuple"] == [1, 2] and echoed["float"] == 1.5
        if protocol == "msgpack":
            assert echoed["bytes"] == b"\x00\xff"
            assert echoed["when"] == value["when"]
        else:
            assert echoed["bytes"] == "AP8="
            assert echoed["when"] == "2024-02-29T12:30:15.25Z"


async def test_hub_errors(server: str, combo: Combo) -> None:
    # scenario: {t}.{p}.invoke.throw, {t}.{p}.invoke.unknown-method
    async with builder(server, *combo).build() as conn:
        with pytest.raises(hublink.HubError) as error:
            await conn.invoke("ThrowException", "An error")
        assert str(error.value) == (
            "An unexpected error occurred invoking 'ThrowException' on the server. "
            "InvalidOperationException: An error"
        )
        assert isinstance(error.value, hublink.HubLinkError)
        with pytest.raises(hublink.HubError, match="Method does not exist"):
            await conn.invoke("NoSuchMethod")
        assert await conn.invoke("Echo", "still here") == "still here"


async def test_wrong_argument_types(server: str) -> None:
    async with builder(server, "ws", "json").build() as conn:
        with pytest.raises(TypeError, match="argument 1: cannot send a value of type 'object'"):
            await conn.invoke("Echo", object())
        with pytest.raises(TypeError, match="'set'"):
            await conn.send("Echo", {1, 2})
        with pytest.raises(OverflowError):
            await conn.invoke("Echo", 2**64)
        with pytest.raises(hublink.InvalidArgumentError, match="NaN"):
            await conn.invoke("Echo", float("nan"))  # JSON cannot carry NaN
        recursive: List[Any] = []
        recursive.append(recursive)
        with pytest.raises(ValueError, match="nests more than"):
            await conn.invoke("Echo", recursive)
        assert await conn.invoke("Echo", "fine") == "fine"


async def test_invoke_after_stop(server: str) -> None:
    conn = builder(server, "ws", "json").build()
    closed: "asyncio.Future[Optional[BaseException]]" = asyncio.get_running_loop().create_future()
    conn.on_close(closed.set_result)
    with pytest.raises(hublink.InvalidStateError):
        await conn.invoke("Echo", 1)
    await conn.start()
    await conn.stop()
    assert await asyncio.wait_for(closed, 10) is None
    with pytest.raises(hublink.InvalidStateError, match="not in the 'Connected' State"):
        await conn.invoke("Echo", 1)
    with pytest.raises(hublink.InvalidStateError):
        await conn.send("Echo", 1)


async def test_restart_keeps_handlers(server: str, combo: Combo) -> None:
    # scenario: {t}.{p}.connect.restart, {t}.{p}.on.survives-restart
    conn = builder(server, *combo).build()
    got: "asyncio.Queue[str]" = asyncio.Queue()
    conn.on("Message", got.put_nowait)
    for round in range(2):
        async with conn:
            await conn.send("InvokeWithString", f"round {round}")
            assert await asyncio.wait_for(got.get(), 10) == f"round {round}"


async def test_headers_and_token_factories(server: str, combo: Combo) -> None:
    # scenario: {t}.{p}.headers.custom, {t}.{p}.auth.access-token-factory, {t}.{p}.auth.access-token-factory-async
    transport, protocol = combo
    async with builder(server, transport, protocol).with_header("X-Tenant", "a").build() as conn:
        assert await conn.invoke("GetHeader", "X-Tenant") == "a"

    token = await asyncio.to_thread(http_get, f"{server}/generateJwtToken")
    conn = builder(server, transport, protocol, "/authorizedhub").with_access_token_factory(lambda: token).build()
    async with conn:
        assert await conn.invoke("Echo", "sync token") == "sync token"

    calls: List[int] = []

    async def fetch_token() -> str:
        calls.append(1)
        return await asyncio.to_thread(http_get, f"{server}/generateJwtToken")

    conn = builder(server, transport, protocol, "/authorizedhub").with_access_token_factory(fetch_token).build()
    async with conn:
        assert await conn.invoke("GetUserNameIdentifier") == "testuser"
    assert calls


async def test_unauthorized_and_negotiation_errors(server: str, combo: Combo) -> None:
    # scenario: {t}.{p}.auth.unauthorized, any.any.negotiate.error
    transport, protocol = combo
    conn = builder(server, transport, protocol, "/authorizedhub").build()
    with pytest.raises(hublink.NegotiationError) as error:
        await conn.start()
    assert error.value.status == 401
    assert conn.state is HubConnectionState.DISCONNECTED

    conn = builder(server, transport, protocol, "/negotiate-error").build()
    with pytest.raises(hublink.NegotiationError, match="Negotiate refused by the test server."):
        await conn.start()

    def broken_factory() -> str:
        raise RuntimeError("no token today")

    conn = builder(server, transport, protocol, "/authorizedhub").with_access_token_factory(broken_factory).build()
    with pytest.raises(hublink.NegotiationError, match="no token today"):
        await conn.start()


async def test_automatic_reconnect(server: str) -> None:
    # scenario: ws.json.close.allow-reconnect, ws.msgpack.close.allow-reconnect
    for protocol in ("json", "msgpack"):
        conn = builder(server, "ws", protocol).with_automatic_reconnect([0, 0.1]).build()
        reconnecting: "asyncio.Future[Optional[BaseException]]" = asyncio.get_running_loop().create_future()
        reconnected: "asyncio.Future[Optional[str]]" = asyncio.get_running_loop().create_future()
        conn.on_reconnecting(reconnecting.set_result)

        @conn.on_reconnected
        async def on_reconnected(
            connection_id: Optional[str], reconnected: "asyncio.Future[Optional[str]]" = reconnected
        ) -> None:
            reconnected.set_result(connection_id)

        async with conn:
            first = conn.connection_id
            with contextlib.suppress(hublink.HubLinkError):
                await conn.send("CloseMe", "bye", True)
            error = await asyncio.wait_for(reconnecting, 10)
            assert isinstance(error, hublink.HubLinkError) and "bye" in str(error)
            new_id = await asyncio.wait_for(reconnected, 10)
            assert new_id is not None and new_id != first
            assert conn.state is HubConnectionState.CONNECTED
            assert await conn.invoke("Echo", "back") == "back"


async def test_close_without_reconnect(server: str, combo: Combo) -> None:
    # scenario: {t}.{p}.close.no-reconnect, {t}.{p}.close.pending-fail
    conn = builder(server, *combo).build()
    closed: "asyncio.Future[Optional[BaseException]]" = asyncio.get_running_loop().create_future()

    @conn.on_close
    async def on_close(error: Optional[BaseException]) -> None:
        closed.set_result(error)

    await conn.start()

    async def read_forever() -> None:
        async for _ in conn.stream("InfiniteStream"):
            pass

    pending = asyncio.ensure_future(read_forever())
    await asyncio.sleep(0.1)
    # The server may close before the send is acknowledged (Long Polling's POST).
    with contextlib.suppress(hublink.HubLinkError):
        await conn.send("CloseMe", "closing", False)
    error = await asyncio.wait_for(closed, 10)
    assert isinstance(error, hublink.HubLinkError) and "closing" in str(error)
    with pytest.raises(hublink.HubLinkError):
        await asyncio.wait_for(pending, 10)
    assert conn.state is HubConnectionState.DISCONNECTED


async def test_retry_policy_that_gives_up(server: str) -> None:
    # scenario: any.any.reconnect.no-policy
    contexts: List[hublink.RetryContext] = []

    def give_up(context: hublink.RetryContext) -> Optional[float]:
        contexts.append(context)
        return None

    conn = builder(server, "ws", "json").with_automatic_reconnect(give_up).build()
    reconnecting: List[Optional[BaseException]] = []
    conn.on_reconnecting(reconnecting.append)
    closed: "asyncio.Future[Optional[BaseException]]" = asyncio.get_running_loop().create_future()
    conn.on_close(closed.set_result)
    await conn.start()
    with contextlib.suppress(hublink.HubLinkError):
        await conn.send("CloseMe", "gone", True)
    error = await asyncio.wait_for(closed, 10)
    assert isinstance(error, hublink.HubLinkError) and "gone" in str(error)
    assert reconnecting == []
    assert len(contexts) == 1 and contexts[0].previous_retry_count == 0
    assert "gone" in str(contexts[0].retry_reason)


async def test_stateful_reconnect_is_invisible(server: str) -> None:
    # scenario: ws.json.stateful.server-drop, ws.msgpack.stateful.server-drop
    for protocol in ("json", "msgpack"):
        conn = builder(server, "ws", protocol).with_stateful_reconnect().with_automatic_reconnect().build()
        events: List[str] = []
        conn.on_reconnecting(lambda error, events=events: events.append("reconnecting"))
        conn.on_close(lambda error, events=events: events.append("closed"))
        async with conn:
            first = conn.connection_id
            with contextlib.suppress(hublink.HubLinkError):
                await conn.invoke("Abort")
            assert await asyncio.wait_for(conn.invoke("Echo", "still here"), 20) == "still here"
            assert conn.connection_id == first
            assert events == []
