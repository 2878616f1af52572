"""Throughput of hublink's Python binding against pysignalr and signalrcore, in one run.

    python/bench/run.sh            # builds what it needs, then runs this
    python bench.py --seconds 3 --stream-items 200000

Every client talks to the same in-repo test server (release build) over WebSockets + JSON
(the transport and protocol all three support) and measures:
- sequential echo: `Echo("hello")` invocations per second, one at a time;
- pipelined echo: the same with 100 invocations in flight;
- stream items: items per second of `StreamCount(n)`, read to the end.

A benchmark, not a test: it prints a table (and Markdown rows with --markdown).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[2]
WINDOW = 100


class Result:
    def __init__(self, client: str) -> None:
        self.client = client
        self.figures: Dict[str, float] = {}


async def timed_async(seconds: float, window: int, call: Callable[[], Awaitable[Any]]) -> float:
    """Calls per second of `call`, with `window` calls in flight, for `seconds`."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(window)))
    return done / (time.perf_counter() - start)


# --------------------------------------------------------------------------- hublink
async def bench_hublink(url: str, seconds: float, items: int) -> Result:
    import hublink

    result = Result(f"hublink {hublink.__version__}")
    conn = hublink.HubConnectionBuilder().with_url(url, transports=["websockets"]).build()
    async with conn:
        assert await conn.invoke("Echo", "hello") == "hello"
        result.figures["echo_seq"] = await timed_async(seconds, 1, lambda: conn.invoke("Echo", "hello"))
        result.figures["echo_window"] = await timed_async(seconds, WINDOW, lambda: conn.invoke("Echo", "hello"))
        start = time.perf_counter()
        count = 0
        async for _ in conn.stream("StreamCount", items):
            count += 1
        assert count == items, count
        result.figures["stream"] = items / (time.perf_counter() - start)
    return result


# --------------------------------------------------------------------------- pysignalr
async def bench_pysignalr(url: str, seconds: float, items: int) -> Result:
    import importlib.metadata

    from pysignalr.client import SignalRClient
    from pysignalr.messages import CompletionMessage

    result = Result(f"pysignalr {importlib.metadata.version('pysignalr')}")
    client = SignalRClient(url)
    opened = asyncio.Event()

    async def on_open() -> None:
        opened.set()

    client.on_open(on_open)
    runner = asyncio.create_task(client.run())
    await asyncio.wait_for(opened.wait(), 30)
    loop = asyncio.get_running_loop()

    async def invoke() -> Any:
        future: "asyncio.Future[Any]" = loop.create_future()

        async def on_completion(message: CompletionMessage) -> None:
            future.set_result(message.result)

        await client.send("Echo", ["hello"], on_invocation=on_completion)  # type: ignore[list-item]
        return await future

    try:
        assert await invoke() == "hello"
        result.figures["echo_seq"] = await timed_async(seconds, 1, invoke)
        result.figures["echo_window"] = await timed_async(seconds, WINDOW, invoke)
        count = 0
        finished = asyncio.Event()

        async def on_next(item: Any) -> None:
            nonlocal count
            count += 1

        async def on_complete(message: Any) -> None:
            finished.set()

        start = time.perf_counter()
        await client.stream("StreamCount", [items], on_next=on_next, on_complete=on_complete)  # type: ignore[list-item]
        await asyncio.wait_for(finished.wait(), 600)
        assert count == items, count
        result.figures["stream"] = items / (time.perf_counter() - start)
    finally:
        runner.cancel()
        try:
            await runner
        except BaseException:  # noqa: BLE001 - cancelled on purpose
            pass
    return result


# --------------------------------------------------------------------------- signalrcore
def bench_signalrcore(url: str, seconds: float, items: int) -> Result:
    import importlib.metadata

    from signalrcore.hub_connection_builder import HubConnectionBuilder

    result = Result(f"signalrcore {importlib.metadata.version('signalrcore')}")
    conn = HubConnectionBuilder().with_url(url).build()
    opened = threading.Event()
    conn.on_open(opened.set)
    conn.start()
    assert opened.wait(30), "signalrcore did not connect"

    def run(window: int) -> float:
        slots = threading.Semaphore(window)
        done = 0
        lock = threading.Lock()

        def on_completion(_message: Any) -> None:
            nonlocal done
            with lock:
                done += 1
            slots.release()

        deadline = time.perf_counter() + seconds
        start = time.perf_counter()
        while time.perf_counter() < deadline:
            slots.acquire()
            conn.invoke("Echo", ["hello"], on_invocation=on_completion)
        for _ in range(window):  # wait for the calls in flight
            slots.acquire()
        return done / (time.perf_counter() - start)

    try:
        result.figures["echo_seq"] = run(1)
        result.figures["echo_window"] = run(WINDOW)
        count = 0
        finished = threading.Event()

        def on_next(_item: Any) -> None:
            nonlocal count
            count += 1

        start = time.perf_counter()
        conn.stream("StreamCount", [items]).subscribe(
            {"next": on_next, "complete": lambda _m: finished.set(), "error": lambda e: finished.set()}
        )
        assert finished.wait(600), "the stream did not complete"
        assert count == items, count
        result.figures["stream"] = items / (time.perf_counter() - start)
    finally:
        conn.stop()
    return result


# --------------------------------------------------------------------------- main
def start_server(binary: Path) -> "tuple[subprocess.Popen[bytes], str]":
    server = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert server.stdout is not None
    return server, server.stdout.readline().decode().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each echo run")
    parser.add_argument("--stream-items", type=int, default=100_000)
    parser.add_argument("--server", type=Path, default=ROOT / "target" / "release" / "hublink-testserver")
    parser.add_argument("--markdown", action="store_true", help="also print Markdown table rows")
    parser.add_argument("--only", choices=["hublink", "pysignalr", "signalrcore"], action="append")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the peers log every connection at INFO

    server, base = start_server(args.server)
    url = f"{base}/testhub"
    results: List[Result] = []
    try:
        for name in args.only or ["hublink", "pysignalr", "signalrcore"]:
            print(f"running {name} …", file=sys.stderr, flush=True)
            if name == "hublink":
                results.append(asyncio.run(bench_hublink(url, args.seconds, args.stream_items)))
            elif name == "pysignalr":
                results.append(asyncio.run(bench_pysignalr(url, args.seconds, args.stream_items)))
            else:
                results.append(bench_signalrcore(url, args.seconds, args.stream_items))
    finally:
        server.terminate()
        server.wait()

    columns = [("echo_seq", "echo, sequential (calls/s)"), ("echo_window", f"echo, {WINDOW} in flight (calls/s)"),
               ("stream", "stream items/s")]
    peers = [r for r in results if not r.client.startswith("hublink")]
    ours = next((r for r in results if r.client.startswith("hublink")), None)
    print(f"\nPython {platform.python_version()}, {os.cpu_count()} CPUs, {args.seconds:g} s per echo run, "
          f"StreamCount({args.stream_items})")
    print(f"{'client':<22}" + "".join(f"{title:>32}" for _, title in columns))
    for r in results:
        print(f"{r.client:<22}" + "".join(f"{r.figures.get(key, float('nan')):>32,.0f}" for key, _ in columns))
    ratio: Optional[Dict[str, float]] = None
    if ours and peers:
        ratio = {key: ours.figures[key] / max(p.figures[key] for p in peers) for key, _ in columns}
        print(f"{'hublink / best peer':<22}" + "".join(f"{ratio[key]:>31.1f}×" for key, _ in columns))
    if args.markdown:
        print("\n| client | " + " | ".join(title for _, title in columns) + " |")
        print("|---|" + "---:|" * len(columns))
        for r in results:
            print(f"| {r.client} | " + " | ".join(f"{r.figures[key]:,.0f}" for key, _ in columns) + " |")
        if ratio:
            print("| **hublink ÷ the faster peer** | " + " | ".join(f"**{ratio[key]:.1f}×**" for key, _ in columns) + " |")


if __name__ == "__main__":
    main()
