"""Each decision's verdict, recorded in history so that a replay reaches it again whatever was redeployed.

Checking a decision asks things a redeploy may change: the tool's schema (edited arguments, user
input) and the approvers' groups (``set_group_resolver``). A run replayed by a newer worker would
otherwise check an old decision against the new definitions, reach another verdict, and fail
with a non-determinism error, wedged. So the first time a decision is checked, its verdict goes
into history as a marker; on replay the marker decides, and only checks on the run's own state
run again.

Runs of the current generation (``generation.py``) record only refusals: as not allowed (which
the run forwards to a member, a command of its own) or refused; a decision with no marker was
accepted. Most decisions are accepted, and each marker is a history event and a visibility write.
Runs recorded before it record acceptances too (``hitl-verdict-N-accepted``), and runs recorded
before ``hitl-recorded-verdicts`` check as they always did.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

from hitl.decisions import Decision
from hitl.errors import DecisionNotAllowedError, HitlError, InvalidDecisionError

PATCH = "hitl-recorded-verdicts"


@dataclass
class Verdict:
    """What a replayed decision was judged when first received."""

    refused: str | None = None
    """None: accepted; "not_allowed" or "refused" otherwise."""
    index: int | None = None
    """Which decision of the call was not allowed."""

    def refusal(self, run_id: str, items: list[Decision]) -> HitlError:
        if self.refused == "not_allowed":
            exc: HitlError = DecisionNotAllowedError(f"run {run_id}: decision not allowed (as when first received)")
            if self.index is not None and self.index < len(items):
                exc.decision = items[self.index]  # type: ignore[attr-defined]  # read with getattr (handlers.py)
            return exc
        return InvalidDecisionError(f"run {run_id}: decision refused (as when first received)")


class Verdicts:
    def __init__(self, refusals_only: bool) -> None:
        self._seen = 0
        self._refusals_only = refusals_only

    def _on(self) -> bool:
        return self._refusals_only or workflow.patched(PATCH)

    def replayed(self, count: int) -> Verdict | None:
        """The recorded verdict of the next decision (a call of ``count`` decisions), when replaying
        a run that records them; else None (check it now)."""
        self._seen += 1
        if not self._on() or not workflow.unsafe.is_replaying():
            return None
        n = self._seen
        if not self._refusals_only and workflow.patched(f"hitl-verdict-{n}-accepted"):
            return Verdict()
        if workflow.patched(f"hitl-verdict-{n}-not-allowed"):
            which = next((i for i in range(count) if workflow.patched(f"hitl-verdict-{n}-not-allowed-{i}")), None)
            return Verdict(refused="not_allowed", index=which)
        if self._refusals_only and not workflow.patched(f"hitl-verdict-{n}-refused"):
            return Verdict()
        return Verdict(refused="refused")

    def accepted(self) -> None:
        if not self._refusals_only and self._on() and not workflow.unsafe.is_replaying():
            workflow.patched(f"hitl-verdict-{self._seen}-accepted")

    def refused(self, exc: HitlError, index: int | None) -> None:
        """Recorded: a refusal as not allowed (the run acts on it); in the current generation, any refusal."""
        if not self._on() or workflow.unsafe.is_replaying():
            return
        if isinstance(exc, DecisionNotAllowedError):
            workflow.patched(f"hitl-verdict-{self._seen}-not-allowed")
            workflow.patched(f"hitl-verdict-{self._seen}-not-allowed-{index if index is not None else 0}")
        elif self._refusals_only:
            workflow.patched(f"hitl-verdict-{self._seen}-refused")
