"""Refused attempts kept on an approval's history, a few per decider: a flood of them cannot grow a run.

A refused decision (someone who is not an approver, a decision on a requirement already decided)
is kept on the approval's history as a ``refused`` event: the trail shows who tried. But a caller
can repeat one as often as it likes, and each kept attempt costs the run an accepted update, a
workflow task and a mirror activity: a few thousand would reach Temporal's history limit. So the
first :data:`KEPT` attempts per decider and requirement are kept; after that an update is refused
by its validator, before it enters history (the caller still gets the refusal), and a signal,
which has no validator, is refused without being recorded.

Runs recorded before this kept every attempt: the cap is asked (``workflow.patched``) only when it
would bite, so a run that never meets it records no marker, and an old run replays as it ran.
"""

from __future__ import annotations

from temporalio import workflow

KEPT = 3
"""Refused attempts kept per decider and requirement."""
PATCH = "hitl-refusals-capped"


class Refusals:
    """How many refused attempts each decider has made on each requirement of this run."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}

    def spent(self, requirement_id: str, by: str | None) -> bool:
        """Whether ``by`` has used up its kept attempts on the requirement (asked by validators only)."""
        return self._counts.get((requirement_id, by or ""), 0) >= KEPT

    def keep(self, requirement_id: str, by: str | None) -> bool:
        """Count one more refused attempt; whether it goes on the approval's history."""
        key = (requirement_id, by or "")
        n = self._counts.get(key, 0)
        self._counts[key] = n + 1
        return n < KEPT or not workflow.patched(PATCH)
