"""Refusals per principal: a caller refused too often lately gets 429 on the routes that decide.

Each refused decision already costs its run little (``hitl.workflows.refusals`` keeps a few per
decider and approval on the trail, then refuses before history), but each still costs the service a
Temporal round trip, and a caller probing for approvals it may not see learns one answer per try.
So every route that decides counts its caller's refusals (403, and 404 for approvals it may not
see) in a sliding window; past ``limit`` in ``window`` seconds, it answers 429 with ``Retry-After``
before doing anything. The count is per service process and held in memory: a restart forgets it.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable
from typing import TypeVar

from hitl.errors import PermissionDeniedError, RequirementNotFoundError, RunNotFoundError, TooManyRequestsError

__all__ = ["RefusalThrottle"]

T = TypeVar("T")
_REFUSALS = (PermissionDeniedError, RequirementNotFoundError, RunNotFoundError)


class RefusalThrottle:
    """At most ``limit`` refused decisions per principal in any ``window`` seconds."""

    def __init__(self, limit: int = 20, window: float = 60.0, *, max_principals: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self._max_principals = max_principals
        self._refused: dict[str, deque[float]] = {}

    def _recent(self, name: str, now: float) -> deque[float]:
        times = self._refused.get(name)
        if times is None:
            if len(self._refused) >= self._max_principals:  # bounded memory: forget whoever is quiet now
                for quiet in [n for n, t in self._refused.items() if not t or t[-1] <= now - self.window]:
                    del self._refused[quiet]
            times = self._refused[name] = deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def check(self, name: str) -> None:
        """Raise ``TooManyRequestsError`` while ``name`` is over its limit."""
        now = time.monotonic()
        times = self._recent(name, now)
        if len(times) >= self.limit:
            wait = max(1, math.ceil(times[0] + self.window - now))
            raise TooManyRequestsError(
                f"{name} was refused {len(times)} times in the last {self.window:g} s (decisions it may not make, "
                f"approvals it may not see); try again in {wait} s", retry_after=wait)

    def refused(self, name: str) -> None:
        self._recent(name, time.monotonic()).append(time.monotonic())

    async def counting(self, name: str, work: Awaitable[T]) -> T:
        """``await work``, its refusal counted. (``check`` comes first, in the route's dependencies: a 429 is
        never kept as the answer to an ``Idempotency-Key``.)"""
        try:
            return await work
        except _REFUSALS:
            self.refused(name)
            raise
