"""Python ↔ hub value conversions in both protocols, without a server."""

from __future__ import annotations

import datetime

import pytest

import hublink
from hublink import _native

UTC = datetime.timezone.utc


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
def test_plain_values_round_trip(protocol: str) -> None:
    for value in [None, True, False, 0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 1.5, "", "héllo 你好",
                  [1, [2, [3]]], {"a": 1, "b": [None]}]:
        assert _native.roundtrip(value, protocol) == value
    assert _native.roundtrip((1, "x"), protocol) == [1, "x"]
    dict_order = {"z": 1, "a": 2, "m": 3}
    assert list(_native.roundtrip(dict_order, protocol)) == ["z", "a", "m"]


def test_messagepack_keeps_bytes_timestamps_and_extensions() -> None:
    when = datetime.datetime(2000, 1, 1, tzinfo=UTC)
    assert _native.roundtrip(b"\x00\x01", "messagepack") == b"\x00\x01"
    assert _native.roundtrip(bytearray(b"ab"), "messagepack") == b"ab"
    assert _native.roundtrip(memoryview(b"cd"), "messagepack") == b"cd"
    assert _native.roundtrip(when, "messagepack") == when
    precise = datetime.datetime(1969, 7, 20, 20, 17, 40, 123456, tzinfo=UTC)
    assert _native.roundtrip(precise, "messagepack") == precise
    naive = datetime.datetime(2020, 5, 17, 8, 0)  # naive datetimes are taken as UTC
    assert _native.roundtrip(naive, "messagepack") == naive.replace(tzinfo=UTC)
    offset = datetime.datetime(2020, 5, 17, 10, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert _native.roundtrip(offset, "messagepack") == offset
    ext = hublink.Extension(5, b"xyz")
    back = _native.roundtrip(ext, "messagepack")
    assert back == ext and back.code == 5 and back.data == b"xyz"
    assert _native.roundtrip({1: "int key", (1, 2): "array key"}, "messagepack") == {
        1: "int key",
        (1, 2): "array key",
    }


def test_json_uses_dotnet_forms() -> None:
    assert _native.roundtrip(b"\x01\x02\x03", "json") == "AQID"
    when = datetime.datetime(2000, 1, 1, tzinfo=UTC)
    assert _native.roundtrip(when, "json") == "2000-01-01T00:00:00Z"
    with pytest.raises(hublink.InvalidArgumentError):
        _native.roundtrip(float("inf"), "json")
    with pytest.raises(hublink.InvalidArgumentError):
        _native.roundtrip({1: "non-string key"}, "json")


def test_unsupported_values_raise_type_errors() -> None:
    for bad in [object(), {1, 2}, 1j, lambda: None]:
        with pytest.raises(TypeError, match="cannot send a value of type"):
            _native.roundtrip(bad, "json")
    with pytest.raises(OverflowError):
        _native.roundtrip(-(2**63) - 1, "messagepack")


def test_builder_validates() -> None:
    with pytest.raises(hublink.InvalidArgumentError):
        hublink.HubConnectionBuilder().build()
    with pytest.raises(hublink.InvalidArgumentError, match="http or https"):
        hublink.HubConnectionBuilder().with_url("ftp://example.com/hub").build()
    with pytest.raises(ValueError, match="Unknown transport 'pigeon': use WebSockets, ServerSentEvents or LongPolling"):
        hublink.HubConnectionBuilder().with_url("http://x/hub", transports=["pigeon"]).build()
    # The official clients' spellings and HttpTransportType flags are all accepted.
    for transports in (["WebSockets", "LongPolling"], ["webSockets", "longPolling"], 5, [1, 4], "ServerSentEvents"):
        hublink.HubConnectionBuilder().with_url("http://x/hub", transports=transports).build()
    with pytest.raises(ValueError, match="Unknown transport '8'"):
        hublink.HubConnectionBuilder().with_url("http://x/hub", transports=8).build()
    conn = (
        hublink.HubConnectionBuilder()
        .with_url("http://localhost:1/hub", headers={"X-Tenant": "a"}, transports=["websockets", "longpolling"])
        .with_messagepack()
        .with_automatic_reconnect()
        .with_stateful_reconnect()
        .with_server_timeout(30)
        .with_keep_alive_interval(10)
        .build()
    )
    assert conn.protocol == "messagepack"
    assert conn.state is hublink.HubConnectionState.DISCONNECTED
    assert conn.connection_id is None and conn.transport is None


def test_error_hierarchy() -> None:
    for cls in [hublink.HubError, hublink.ConnectionClosedError, hublink.NegotiationError,
                hublink.TransportError, hublink.HandshakeError, hublink.InvalidStateError,
                hublink.InvalidArgumentError, hublink.ProtocolError, hublink.TimeoutError,
                hublink.AbortError]:
        assert issubclass(cls, hublink.HubLinkError)
    # A hublink timeout is also the built-in one, so `except TimeoutError` catches it.
    assert issubclass(hublink.TimeoutError, TimeoutError)
    assert issubclass(hublink.InvalidArgumentError, ValueError)
