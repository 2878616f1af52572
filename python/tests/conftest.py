"""Fixtures: the in-repo test server (a process) and connections to it."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

import hublink

ROOT = Path(__file__).resolve().parents[2]

# Every transport × protocol the spec allows (no MessagePack over Server-Sent Events).
COMBOS: List[Tuple[str, str]] = [
    ("ws", "json"),
    ("ws", "msgpack"),
    ("sse", "json"),
    ("lp", "json"),
    ("lp", "msgpack"),
]
TRANSPORTS = {"ws": "websockets", "sse": "serversentevents", "lp": "longpolling"}
NAMES = {"ws": "WebSockets", "sse": "ServerSentEvents", "lp": "LongPolling"}


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """The base URL of a running hublink-testserver."""
    binary = os.environ.get(
        "HUBLINK_TESTSERVER", str(ROOT / "target" / "debug" / "hublink-testserver")
    )
    process = subprocess.Popen(
        [binary, "--long-poll-timeout-ms", "1000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    url = process.stdout.readline().decode().strip()
    assert url.startswith("http://"), f"the test server printed {url!r}"
    yield url
    process.terminate()
    process.wait(timeout=10)


def builder(server: str, transport: str, protocol: str, path: str = "/testhub") -> hublink.HubConnectionBuilder:
    b = hublink.HubConnectionBuilder().with_url(server + path, transports=[TRANSPORTS[transport]])
    if protocol == "msgpack":
        b = b.with_messagepack()
    return b


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


@pytest.fixture(params=COMBOS, ids=[f"{t}.{p}" for t, p in COMBOS])
def combo(request: pytest.FixtureRequest) -> Tuple[str, str]:
    return request.param  # type: ignore[no-any-return]
