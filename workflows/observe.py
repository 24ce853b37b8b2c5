"""Spans and metrics of pauses and decisions, from workflow code, that never touch history.

Spans are made by Temporal's tracing interceptor (``hitl.observability.tracing``) only when tracing is on in the
worker and the workflow is not replaying, whether or not the processes that started and decided the
run were traced; metrics go through ``workflow.metric_meter()``, which records only
when not replaying. Neither adds a command, so replays of recorded histories are unchanged.
Labels are the agent, the tool and the outcome: never run ids (unbounded) or arguments.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from temporalio import workflow

from hitl.run import RunRequirement

try:
    from hitl.observability import tracing as _tracing
except ImportError:  # opentelemetry is not installed: no spans
    _tracing = None  # type: ignore[assignment]

DECIDED = frozenset({"confirmed", "rejected", "input_provided", "result_provided", "expired"})
COUNTED = {"reminded": "hitl_reminders", "escalated": "hitl_escalations", "expired": "hitl_expiries",
           "refused": "hitl_refused_decisions"}
_HELP = {
    "hitl_reminders": "Reminders sent to approvers of a pending approval",
    "hitl_escalations": "Pending approvals escalated to other approvers",
    "hitl_expiries": "Approvals whose deadline decided them",
    "hitl_refused_decisions": "Decisions refused (not an approver, a bad decision...)",
}


def _interceptor() -> Any:
    return _tracing.current() if _tracing is not None else None  # never raises


def _failed(what: str, exc: Exception) -> None:
    """Tracing issues no commands, so a failure in it is logged (once per run) and never raised into the task."""
    if not getattr(_failed, "logged", False) and not workflow.unsafe.is_replaying():
        _failed.logged = True  # type: ignore[attr-defined]
        workflow.logger.warning("tracing: %s failed (%s); the run goes on untraced there", what, type(exc).__name__)


def paused(agent: str, run_id: str, reqs: Sequence[RunRequirement]) -> None:
    """A pause began: a ``hitl.pause`` span, and ``hitl_approvals_requested`` for each approval."""
    tools = sorted({r.tool_execution.tool_name for r in reqs})
    if (t := _interceptor()) is not None:
        try:
            t.span("hitl.pause", {"hitl.agent": agent, "hitl.run_id": run_id, "hitl.tools": ",".join(tools),
                                  "hitl.requirements": len(reqs), "hitl.requirement_ids": ",".join(r.id for r in reqs)})
        except Exception as exc:
            _failed("the hitl.pause span", exc)
    meter = workflow.metric_meter()
    counter = meter.create_counter("hitl_approvals_requested", "Approvals a run paused for")
    for r in reqs:
        counter.add(1, {"agent": agent, "tool": r.tool_execution.tool_name})


def recorded(agent: str, run_id: str, req: RunRequirement, kind: str, details: dict[str, Any]) -> dict[str, str] | None:
    """An event on an approval: counted, and a decision traced and timed.

    Returns the carrier of the ``hitl.decision`` span (the tool call it lets run is started under it),
    or None when tracing is off or replaying.
    """
    tool = req.tool_execution.tool_name
    labels = {"agent": agent, "tool": tool}
    meter = workflow.metric_meter()
    if kind in COUNTED:
        meter.create_counter(COUNTED[kind], _HELP[COUNTED[kind]]).add(1, labels)
    payload = details.get("payload") or {}
    if kind not in DECIDED and kind != "refused":
        return None
    if kind in DECIDED and payload.get("via") != "remembered" and req.paused_at is not None:
        waited = max(0.0, workflow.now().timestamp() - req.paused_at)
        meter.create_histogram_float("hitl_decision_seconds", "From a pause to its approval's decision", "s").record(
            waited, {**labels, "resolution": kind})
    if (t := _interceptor()) is None:
        return None
    try:
        attributes: dict[str, str | int] = {"hitl.agent": agent, "hitl.run_id": run_id, "hitl.tool": tool,
                                            "hitl.requirement_id": req.id, "hitl.outcome": kind}
        # Who decided: an approver's name (system:timeout for a deadline). A refused attempt's name is only
        # what it claimed (it was refused): labelled so.
        decider = payload.get("resolved_by") if kind == "refused" else req.resolved_by
        if isinstance(decider, str) and decider:
            attributes["hitl.claimed_by" if kind == "refused" else "hitl.decider"] = decider[:256]
        return t.span("hitl.decision", attributes)
    except Exception as exc:
        _failed("the hitl.decision span", exc)
        return None


@contextmanager
def within(carrier: dict[str, str] | None) -> Iterator[None]:
    """Start what the block starts (a tool's activity) under the decision that allowed it."""
    t = _interceptor() if carrier else None
    entered = None
    if t is not None:
        try:  # only entering and leaving the context are guarded: the block's own errors propagate
            entered = t.within(carrier)
            entered.__enter__()
        except Exception as exc:
            _failed("the decision's trace context", exc)
            entered = None
    try:
        yield
    finally:
        if entered is not None:
            try:
                entered.__exit__(None, None, None)
            except Exception as exc:
                _failed("leaving the decision's trace context", exc)
