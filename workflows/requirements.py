"""Building requirements from tool calls, and a call's result from its decided requirement.

Pure and deterministic: the caller passes the turn, the pause and the time (from history).
"""

from __future__ import annotations

from hitl._wire import PendingCall
from hitl.run import RunRequirement, ToolExecution

UNCERTAIN_NOTE = (
    "The outcome of {tool!r} is uncertain: an attempt may have run (its worker died or it timed out) and "
    "the tool is not idempotent. Confirm to run it again, reject to not run it."
)


def for_call(call: PendingCall, *, turn: int, pause: int, now: float) -> RunRequirement:
    """The requirement a call raises at a pause (a second one after an uncertain outcome)."""
    call.asks += 1
    plan = call.plan
    rid = f"req-{turn + 1}-{plan.tool_call_id}" + (f"-{call.asks}" if call.asks > 1 else "")
    call.requirement_id = rid
    timeout = plan.policy.timeout_seconds if plan.policy is not None else None
    return RunRequirement(
        id=rid,
        kind=plan.kind or "confirmation",
        tool_execution=ToolExecution(tool_name=plan.tool_name, tool_call_id=plan.tool_call_id,
                                     arguments=dict(call.arguments)),
        user_input_schema=plan.user_input_schema,
        uncertain_outcome=call.uncertain,
        note=UNCERTAIN_NOTE.format(tool=plan.tool_name) if call.uncertain else None,
        pause=pause,
        created_at=int(now),
        approval_type=plan.approval_type,  # type: ignore[arg-type]  # the wire's str; RunRequirement validates it
        policy=plan.policy,
        paused_at=now,
        deadline=now + timeout if timeout is not None else None,
    )


def decided_without_pause(
    call: PendingCall, *, turn: int, id_prefix: str, approval_type: str, resolved_by: str | None, now: float,
    result: str | None = None,
) -> RunRequirement:
    """The approval record of a call that needed no pause: already confirmed, for the audit trail."""
    at = int(now)
    return RunRequirement(
        id=f"{id_prefix}-{turn + 1}-{call.plan.tool_call_id}", kind="confirmation",
        approval_type=approval_type,  # type: ignore[arg-type]  # a str; RunRequirement validates it
        tool_execution=ToolExecution(tool_name=call.plan.tool_name, tool_call_id=call.plan.tool_call_id,
                                     arguments=dict(call.arguments), result=result),
        created_at=at, resolution="confirmed", confirmed=True, resolved_by=resolved_by, resolved_at=at,
    )


def resolve_call(call: PendingCall, req: RunRequirement) -> None:
    """What a decided requirement means for its call: a result for the model, or run it."""
    name = call.plan.tool_name
    if req.resolution == "rejected":
        who = f" by {req.resolved_by}" if req.resolved_by else ""
        reason = f" Reason: {req.rejection_reason}" if req.rejection_reason else ""
        prefix = "The earlier attempt's outcome is unknown and it was not run again. " if req.uncertain_outcome else ""
        call.state, call.output = "done", f"{prefix}The call to {name} was rejected{who}.{reason}"
    elif req.resolution == "expired":
        call.state, call.output = "done", f"The call to {name} was not run: {req.rejection_reason}."
    elif req.resolution == "result_provided":
        call.state, call.output = "done", req.tool_execution.result or ""
    else:
        call.arguments = dict(req.tool_execution.arguments)
        call.state, call.output = "ready", None
