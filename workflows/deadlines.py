"""Escalation steps and deadlines of pending approvals: when each falls due, and what it does.

Pure and deterministic: the caller passes the time (from history) and how to record an event
on the audit trail and notify approvers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import hitl.workflows.decisions as decisions
from hitl.policy import SYSTEM_TIMEOUT
from hitl.run import RunRequirement

if TYPE_CHECKING:
    from hitl._wire import NotificationKind

Record = Callable[[RunRequirement, str, dict[str, Any]], None]
Notify = Callable[[RunRequirement, "NotificationKind"], None]


def clock(req: RunRequirement) -> list[float]:
    """When this requirement's next escalation step and its deadline fall due."""
    times = [req.deadline] if req.deadline is not None else []
    steps = req.policy.escalation if req.policy is not None else []
    if req.paused_at is not None and req.escalation_level < len(steps):
        times.append(req.paused_at + steps[req.escalation_level].after_seconds)
    return times


def escalate_due(requirements: Sequence[RunRequirement], now: float, record: Record, notify: Notify) -> None:
    """Fire every escalation step that is due, each once, in order."""
    for r in requirements:
        if r.policy is None:
            continue  # no steps
        steps = r.policy.escalation
        while r.resolution is None and r.escalation_level < len(steps) and r.paused_at is not None \
                and r.paused_at + steps[r.escalation_level].after_seconds <= now:
            step = steps[r.escalation_level]
            r.escalation_level += 1
            if step.action == "escalate":
                approvers = list(step.to) if step.replace else [*r.approvers, *(a for a in step.to if a not in r.approvers)]
                r.policy = r.policy.model_copy(update={"approvers": approvers})
                record(r, "escalated", {"level": r.escalation_level, "approvers": approvers})
                notify(r, "escalated")
            else:
                record(r, "reminded", {"level": r.escalation_level, "approvers": r.approvers})
                notify(r, "reminder")


def expire_due(requirements: Sequence[RunRequirement], now: float, record: Record, notify: Notify) -> str | None:
    """Let each due deadline decide as ``system:timeout``; why the run is cancelled, if a policy says so."""
    cancel = None
    for r in requirements:
        if r.resolution is not None or r.deadline is None or r.deadline > now or r.policy is None:
            continue
        # A deadline set by change_approval on an approval without a timeout has no timeout to quote. (This
        # once raised here and failed every workflow task after it: no history holds that path, so no patch.)
        timeout = r.policy.timeout_seconds
        waited = f"nobody decided within {timeout:g} s" if timeout is not None else "nobody decided by its deadline"
        if r.policy.on_timeout == "approve":
            patch = decisions.Patch(requirement_id=r.id, resolution="confirmed", resolved_by=SYSTEM_TIMEOUT)
            decisions.apply(r, patch, int(now))
            record(r, "confirmed", {"via": "deadline", "reason": waited})
            continue
        patch = decisions.Patch(requirement_id=r.id, resolution="expired", resolved_by=SYSTEM_TIMEOUT,
                                reason=f"the request expired: {waited}")
        decisions.apply(r, patch, int(now))
        record(r, "expired", {"via": "deadline", "on_timeout": r.policy.on_timeout})
        notify(r, "expired")
        if r.policy.on_timeout == "cancel":
            cancel = f"run cancelled: approval {r.id} ({r.tool_execution.tool_name}) expired, {waited}"
    return cancel
