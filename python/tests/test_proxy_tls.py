"""The TLS and proxy options of the Python binding, over real sockets: a TLS front made with
the openssl command line in front of the test server, and Debian's tinyproxy as the proxy
(scripts/test.sh installs both)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import AsyncIterator, Iterator, List, Tuple

import pytest
from conftest import NAMES, TRANSPORTS

import hublink


class TinyProxy:
    """tinyproxy on 127.0.0.1 with a free port and its log in a temporary directory."""

    def __init__(self, directory: Path, connect_ports: List[int]) -> None:
        self.port = free_port()
        self.log = directory / "tinyproxy.log"
        lines = [
            f"Port {self.port}",
            "Listen 127.0.0.1",
            "Timeout 60",
            "Allow 127.0.0.1",
            "LogLevel Connect",
            f'LogFile "{self.log}"',
        ] + [f"ConnectPort {port}" for port in connect_ports]
        config = directory / "tinyproxy.conf"
        config.write_text("\n".join(lines) + "\n")
        executable = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
        self.process = subprocess.Popen([executable, "-d", "-c", str(config)])
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            assert self.process.poll() is None, "tinyproxy exited"
            assert time.monotonic() < deadline, "tinyproxy did not listen in time"
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> List[str]:
        text = self.log.read_text() if self.log.exists() else ""
        return [line.split("): ", 1)[1] for line in text.splitlines() if "Request (file descriptor" in line]

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


def start_proxy(tmp: Path, connect_ports: List[int]) -> Iterator[TinyProxy]:
    proxy = TinyProxy(tmp, connect_ports)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def proxy(tmp: Path) -> Iterator[TinyProxy]:
    yield from start_proxy(tmp, [])


@pytest.fixture
def refusing_proxy(tmp: Path) -> Iterator[TinyProxy]:
    # CONNECT only to a port nothing uses.
    yield from start_proxy(tmp, [free_port()])


@pytest.mark.parametrize("transport", ["ws", "sse", "lp"])
async def test_every_transport_through_an_explicit_proxy(server: str, proxy: TinyProxy, transport: str) -> None:
    # scenario: ws.json.proxy.connect-tunnel, sse.json.proxy.forward, lp.json.proxy.forward
    hub = server + "/testhub"
    conn = (
        hublink.HubConnectionBuilder()
        .with_url(hub, transports=[TRANSPORTS[transport]])
        .with_proxy(proxy.url)
        .build()
    )
    async with conn:
        assert conn.transport == NAMES[transport]
        assert await conn.invoke("Echo", "via tinyproxy") == "via tinyproxy"
    requests = proxy.requests()
    assert any(r.startswith(f"POST {hub}/negotiate?") for r in requests), requests
    authority = server.removeprefix("http://")
    if transport == "ws":
        assert f"CONNECT {authority} HTTP/1.1" in requests, requests
    else:
        assert any(r.startswith(f"GET {hub}?id=") for r in requests), requests


async def test_no_proxy_hosts_and_with_no_proxy_bypass_it(server: str, proxy: TinyProxy) -> None:
    # scenario: any.any.proxy.no-proxy
    for builder in (
        hublink.HubConnectionBuilder().with_proxy(proxy.url, no_proxy="127.0.0.1"),
        hublink.HubConnectionBuilder().with_no_proxy(),
    ):
        conn = builder.with_url(server + "/testhub", transports=["WebSockets"]).build()
        async with conn:
            assert await conn.invoke("Echo", "direct") == "direct"
    assert proxy.requests() == []


async def test_a_refused_tunnel_names_the_proxy_status(server: str, refusing_proxy: TinyProxy) -> None:
    # scenario: any.any.proxy.refused
    conn = (
        hublink.HubConnectionBuilder()
        .with_url(server + "/testhub", transports=["WebSockets"])
        .with_proxy(refusing_proxy.url)
        .build()
    )
    with pytest.raises(hublink.HubLinkError) as raised:
        await asyncio.wait_for(conn.start(), 20)
    assert f"proxy 127.0.0.1:{refusing_proxy.port} refused CONNECT" in str(raised.value)
    assert ": 403 " in str(raised.value)


def openssl(*arguments: str) -> None:
    subprocess.run(["openssl", *arguments], check=True, capture_output=True)


@pytest.fixture
async def tls_front(server: str, tmp: Path) -> AsyncIterator[Tuple[str, str]]:
    """An https front (a CA and a leaf for 127.0.0.1, made with openssl) relaying to the test
    server: its hub URL and the CA's PEM."""
    ca_key, ca, key, request, leaf, extensions = (
        tmp / name for name in ("ca.key", "ca.pem", "leaf.key", "leaf.csr", "leaf.pem", "leaf.ext")
    )
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=hublink test CA", "-days", "1", "-keyout", str(ca_key), "-out", str(ca))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(request))
    extensions.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "1", "-extfile", str(extensions), "-out", str(leaf))
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(leaf), str(key))
    backend_host, backend_port = server.removeprefix("http://").split(":")

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(backend_host, int(backend_port))

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pump(reader, upstream_writer), pump(upstream_reader, writer))

    front = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=context)
    port = front.sockets[0].getsockname()[1]
    yield f"https://127.0.0.1:{port}/testhub", ca.read_text()
    front.close()


@pytest.mark.parametrize("transport", ["ws", "lp"])
async def test_tls_options_reach_every_transport(tls_front: Tuple[str, str], transport: str) -> None:
    # scenario: any.any.tls.danger-accept-invalid-certs, ws.json.tls.extra-root, lp.json.tls.extra-root
    url, ca_pem = tls_front
    for builder in (
        hublink.HubConnectionBuilder().with_root_certificate_pem(ca_pem),
        hublink.HubConnectionBuilder().danger_accept_invalid_certs(),
    ):
        conn = builder.with_url(url, transports=[TRANSPORTS[transport]]).build()
        async with conn:
            assert await conn.invoke("Echo", "over TLS") == "over TLS"
    # Without the CA the server's certificate is refused.
    conn = hublink.HubConnectionBuilder().with_url(url, transports=[TRANSPORTS[transport]]).build()
    with pytest.raises(hublink.HubLinkError, match="certificate"):
        await asyncio.wait_for(conn.start(), 20)


def test_bad_pem_and_unusable_proxy_urls_are_refused_when_building() -> None:
    for builder in (
        hublink.HubConnectionBuilder().with_root_certificate_pem("not a certificate"),
        hublink.HubConnectionBuilder().with_client_certificate_pem("not a chain", "not a key"),
        hublink.HubConnectionBuilder().with_proxy("socks5://127.0.0.1:1080"),
    ):
        with pytest.raises(hublink.InvalidArgumentError):
            builder.with_url("https://example.com/hub").build()
