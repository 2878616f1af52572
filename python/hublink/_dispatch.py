"""Runs Python callbacks for the native layer, on the event loop thread.

The native code calls these from the loop (through its bridge) and gets the answers
through a ``Reply``. They only adapt plain/async callables; no protocol logic lives here.
"""

from __future__ import annotations

import asyncio
import inspect
from functools import partial
from typing import Any, Callable, Optional

from ._native import Reply


def _report(callback: object, error: BaseException) -> None:
    asyncio.get_running_loop().call_exception_handler(
        {
            "message": f"hublink callback {callback!r} raised",
            "exception": error,
        }
    )


def _finished(reply: Optional[Reply], callback: object, task: "asyncio.Future[Any]") -> None:
    if task.cancelled():
        error: Optional[BaseException] = asyncio.CancelledError()
    else:
        error = task.exception()
    if reply is None:
        if error is not None and not task.cancelled():
            _report(callback, error)
    elif error is not None:
        reply.error(error)
    else:
        reply.ok(task.result())


def call(callback: Callable[..., Any], args: "tuple[Any, ...]", reply: Optional[Reply]) -> None:
    """Calls ``callback(*args)``; a returned awaitable is run as a task."""
    try:
        result = callback(*args)
    except Exception as error:  # noqa: BLE001 - the error goes to the server or the loop
        if reply is None:
            _report(callback, error)
        else:
            reply.error(error)
        return
    if inspect.isawaitable(result):
        task = asyncio.ensure_future(result)
        task.add_done_callback(partial(_finished, reply, callback))
    elif reply is not None:
        reply.ok(result)


def _pulled(reply: Reply, task: "asyncio.Future[Any]") -> None:
    if task.cancelled():
        reply.error(asyncio.CancelledError())
        return
    error = task.exception()
    if isinstance(error, StopAsyncIteration):
        reply.end()
    elif error is not None:
        reply.error(error)
    else:
        reply.ok(task.result())


def pull(iterator: Any, reply: Reply) -> None:
    """Asks an async iterator for its next item."""
    try:
        task = asyncio.ensure_future(iterator.__anext__())
    except Exception as error:  # noqa: BLE001
        reply.error(error)
        return
    task.add_done_callback(partial(_pulled, reply))
