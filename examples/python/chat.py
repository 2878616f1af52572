"""Three clients chat through a hub, in Python: the same small chat as examples/rust-chat.

    python examples/python/chat.py                     # starts the bundled test server
    python examples/python/chat.py --url http://host/hub

The hub needs the methods JoinGroup, SendToGroup, Broadcast, StreamCount, UploadSum and
GetClientResult (tests/testserver has them). Install the package first (python/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

from hublink import HubConnection, HubConnectionBuilder, HubError

ROOT = Path(__file__).resolve().parents[2]


async def join(url: str, name: str, messagepack: bool) -> HubConnection:
    builder = HubConnectionBuilder().with_url(url).with_automatic_reconnect()
    if messagepack:
        builder = builder.with_messagepack()
    conn = builder.build()

    @conn.on("Message")
    def on_message(text: str) -> None:
        print(f"  {name} received: {text}")

    @conn.on("Mood")  # a client result: the server asks, the return value answers
    async def mood() -> str:
        return f"{name} is happy"

    @conn.on_close
    def on_close(error: BaseException | None) -> None:
        print(f"  {name} disconnected{f': {error}' if error else ''}")

    await conn.start()
    print(f"{name} connected over {conn.transport} with {conn.protocol} (id {conn.connection_id})")
    return conn


async def numbers(count: int) -> AsyncIterator[int]:
    for n in range(1, count + 1):
        yield n
        await asyncio.sleep(0)


async def chat(url: str) -> None:
    alice = await join(url, "alice", messagepack=False)
    bob = await join(url, "bob", messagepack=True)
    carol = await join(url, "carol", messagepack=False)
    try:
        for member in (alice, bob):
            await member.invoke("JoinGroup", "friends")
        await carol.send("SendToGroup", "friends", "carol: hi friends (carol is not a member)")
        await alice.send("Broadcast", "alice: hello everyone")
        await asyncio.sleep(0.3)

        squares: list[int] = []
        async for n in bob.stream("StreamCount", 5):
            squares.append(n * n)
        print(f"bob streamed squares {squares}")
        print(f"carol uploaded 1..100, the server summed {await carol.invoke('UploadSum', numbers(100))}")
        print(f"the server asked alice: {await alice.invoke('GetClientResult', 'Mood')!r}")
        try:
            await alice.invoke("NoSuchMethod")
        except HubError as error:
            print(f"a hub error, as the server said it: {error}")
    finally:
        for member in (alice, bob, carol):
            await member.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="the hub URL (default: the bundled test server's /testhub)")
    parser.add_argument("--verbose", action="store_true", help="show hublink's logs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if args.url:
        asyncio.run(chat(args.url))
        return
    binary = ROOT / "target" / "debug" / "hublink-testserver"
    if not binary.exists():
        subprocess.run(["cargo", "build", "-q", "-p", "hublink-testserver"], cwd=ROOT, check=True)
    server = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert server.stdout is not None
        base = server.stdout.readline().decode().strip()
        asyncio.run(chat(f"{base}/testhub"))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
