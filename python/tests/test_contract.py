"""What the core's binding contract gives Python: call order, error kinds as exception
classes, handlers owned by the core.

Scenario names: tests/scenarios/scenarios.txt.
"""

from __future__ import annotations

import asyncio
import time
from typing import List

import pytest
from conftest import builder

import hublink


async def test_calls_reach_the_server_in_the_order_they_were_made(server: str) -> None:
    # scenario: any.any.order.sends-in-order, any.any.order.invoke-before-send
    for transport, protocol in (("ws", "json"), ("ws", "msgpack"), ("lp", "json")):
        async with builder(server, transport, protocol).build() as conn:
            # Made without awaiting; awaited in the reverse order.
            first = conn.invoke("Record", "invoke")
            second = conn.send("Record", "send")
            await second
            assert await first == 0
            sends = [conn.send("Record", i) for i in range(10_000)]
            await asyncio.gather(*reversed(sends))
            recorded = await conn.invoke("Recorded")
            assert recorded[:2] == ["invoke", "send"]
            assert recorded[2:] == list(range(10_000)), f"{transport}.{protocol}"


async def test_a_timeout_is_a_timeout_error(server: str) -> None:
    # scenario: any.any.errors.handshake-timeout
    conn = (
        builder(server, "ws", "json", "/testhub?faults=delay_handshake_ms:3000")
        .with_handshake_timeout(0.3)
        .build()
    )
    started = time.monotonic()
    with pytest.raises(TimeoutError) as error:
        await conn.start()
    assert time.monotonic() - started < 2.5
    assert isinstance(error.value, hublink.TimeoutError)
    assert error.value.kind == "Timeout"
    assert "did not answer the handshake within 300 ms" in str(error.value)
    assert conn.state is hublink.HubConnectionState.DISCONNECTED


async def test_http_failures_carry_their_status(server: str) -> None:
    # scenario: any.any.errors.negotiate-status
    conn = hublink.HubConnectionBuilder().with_url(server + "/no-such-hub").build()
    with pytest.raises(hublink.NegotiationError) as error:
        await conn.start()
    assert error.value.status == 404 and error.value.kind == "Negotiation"


async def test_stop_during_start_is_an_abort(server: str) -> None:
    # scenario: any.any.errors.stopped-during-start
    conn = builder(server, "ws", "json", "/testhub?faults=delay_handshake_ms:2000").build()
    start = asyncio.ensure_future(conn.start())
    await asyncio.sleep(0.3)
    await conn.stop()
    with pytest.raises(hublink.AbortError, match="stopped during negotiation"):
        await start


async def test_calls_on_a_stopped_connection_fail_with_the_official_text(server: str) -> None:
    # scenario: any.any.errors.not-connected
    conn = builder(server, "ws", "json").build()
    with pytest.raises(hublink.InvalidStateError, match="'Connected' State"):
        await conn.invoke("Echo", 1)
    with pytest.raises(hublink.InvalidStateError):
        conn.stream("Stream")


async def test_handlers_live_in_the_core(server: str) -> None:
    # scenario: any.any.on.remove-one-of-several
    conn = builder(server, "ws", "json").build()
    seen: List[str] = []

    def first(text: str) -> None:
        seen.append("first " + text)

    def second(text: str) -> None:
        seen.append("second " + text)

    conn.on("Message", first)
    conn.on("message", second)
    conn.on("MESSAGE", first)

    async def until(count: int) -> None:
        while len(seen) < count:
            await asyncio.sleep(0.01)

    async with conn:
        await conn.invoke("InvokeWithString", "a")
        await asyncio.wait_for(until(3), 10)
        conn.off("message", first)  # both registrations of `first`, not `second`
        await conn.invoke("InvokeWithString", "b")
        await asyncio.wait_for(until(4), 10)
        await asyncio.sleep(0.1)
    assert seen == ["first a", "second a", "first a", "second b"]
