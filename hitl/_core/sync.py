"""Run the async API from sync code: one event loop thread per process, started on first use."""

from __future__ import annotations

import asyncio
import atexit
import gc
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from hitl._core import client

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()
_before_stop: list[Callable[[], Coroutine[Any, Any, None]]] = []


def before_stop(close: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Have hitl's loop thread run ``close()`` before it stops at exit (the database facade closes the async
    pools it opened there: this room cannot import it)."""
    if close not in _before_stop:
        _before_stop.append(close)


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="hitl-sync", daemon=True)
            thread.start()
            atexit.register(_shutdown, loop, thread)
            _loop = loop
        return _loop


def _shutdown(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """Stop the loop and free its Temporal clients while the interpreter is still whole.

    Left to interpreter finalization, the clients' native threads could call back into a
    half-torn-down Python and abort the process after the program's work was done.
    """

    for close in _before_stop:  # the pools this loop opened (read-your-writes waits, the in-process worker's mirror)
        try:
            asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=5)
        except Exception:  # noqa: BLE001, S110 - exiting: a pool that will not close is left to the interpreter
            pass
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    client.forget(loop)
    gc.collect()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on hitl's loop thread and return its result."""
    return asyncio.run_coroutine_threadsafe(coro, _background_loop()).result()
