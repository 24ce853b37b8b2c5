"""Text as the model writes it, from the model activity to a caller streaming the run (``stream=True``).

The run's durable answer stays the source of truth: these deltas only let a caller show text before
the model's turn is recorded. They travel inside one process, from the model activity of an
in-process worker (``hitl._core.inline``) to the caller that started the run there; a caller whose run
is served by another process gets the text when the turn ends, in one piece. A subscriber that
goes away loses nothing: the run goes on and ``get_run`` has the whole answer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from hitl._core.context import member_of

__all__ = ["Delta", "wanted", "publish", "subscribe"]


@dataclass(frozen=True)
class Delta:
    """A piece of the text the model is writing for ``run_id`` (a member's run: its own id)."""

    run_id: str
    text: str
    attempt: int
    """The model activity's attempt: a retry writes its turn again from the start."""


_subscribers: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Delta]]]] = {}
_members: dict[str, tuple[str, ...]] = {}
"""A subscribed team run: its members' slugs (their runs' text goes to it too)."""
_lock = threading.Lock()


def _owner(run_id: str) -> str | None:
    """The subscribed run ``run_id`` belongs to: itself, or the team run it is a member's run of."""

    with _lock:
        if run_id in _subscribers:
            return run_id
        owners = [rid for rid in _subscribers if member_of(rid, run_id, _members.get(rid, ()))]
    return max(owners, key=len) if owners else None


def wanted(run_id: str) -> bool:
    """Whether a caller in this process streams the run (the model activity then asks the model to stream)."""
    return _owner(run_id) is not None


def publish(delta: Delta) -> None:
    """Hand a piece of text to the run's subscribers, on their own loops (thread-safe, never blocks)."""
    owner = _owner(delta.run_id)
    if owner is None:
        return
    with _lock:
        targets = list(_subscribers.get(owner, []))
    for loop, queue in targets:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, delta)
        except RuntimeError:  # that caller's loop has closed
            pass


@asynccontextmanager
async def subscribe(run_id: str, members: tuple[str, ...] = ()) -> AsyncIterator[asyncio.Queue[Delta]]:
    """Receive the deltas of ``run_id`` (and of the runs of its members, by slug) while inside the block."""
    queue: asyncio.Queue[Delta] = asyncio.Queue()
    entry = (asyncio.get_running_loop(), queue)
    with _lock:
        _subscribers.setdefault(run_id, []).append(entry)
        if members:
            _members[run_id] = members
    try:
        yield queue
    finally:
        with _lock:
            entries = _subscribers.get(run_id, [])
            if entry in entries:
                entries.remove(entry)
            if not entries:
                _subscribers.pop(run_id, None)
                _members.pop(run_id, None)
