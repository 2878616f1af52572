"""One native bridge per asyncio event loop (see ``python/src/bridge.rs``)."""

from __future__ import annotations

import asyncio
import weakref

from ._native import Bridge

_bridges: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Bridge]" = (
    weakref.WeakKeyDictionary()
)


def current() -> Bridge:
    """The bridge of the running loop, created on first use."""
    loop = asyncio.get_running_loop()
    bridge = _bridges.get(loop)
    if bridge is None:
        bridge = Bridge()
        loop.add_reader(bridge.fileno(), bridge.drain)
        _bridges[loop] = bridge
    return bridge
