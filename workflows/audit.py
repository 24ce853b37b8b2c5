"""Approval events from requirement state: pure and deterministic, for the workflow's outbox."""

from __future__ import annotations

from typing import Any

from hitl._wire import ApprovalEvent, digest
from hitl.run import RunRequirement

STATUS = {None: "pending", "confirmed": "approved", "input_provided": "approved",
          "result_provided": "approved", "rejected": "rejected", "expired": "expired"}


def event(
    *, run_id: str, agent_name: str, session_id: str | None, user_id: str | None, approval_type: str,
    req: RunRequirement, seq: int, kind: str, at: float, payload: dict[str, Any] | None = None,
    status: str | None = None, requirement_kind: str | None = None, team_run_id: str | None = None,
) -> ApprovalEvent:
    te = req.tool_execution
    context: dict[str, Any] = {"tool_name": te.tool_name, "tool_call_id": te.tool_call_id, "arguments": te.arguments}
    if te.original_arguments is not None:
        context["original_arguments"] = te.original_arguments
    if req.note:
        context["note"] = req.note
    if req.user_input_schema:
        context["user_input_fields"] = [f.name for f in req.user_input_schema]
    if req.approvals:
        context["approvals"] = list(req.approvals)
    if req.policy is not None:
        context["policy"] = req.policy.model_dump()
        context["deadline"] = req.deadline
    resolution: dict[str, Any] | None = None
    if req.resolution in ("rejected", "expired"):
        resolution = {"decision": req.resolution, "reason": req.rejection_reason}
    elif req.resolution == "confirmed":
        resolution = {"decision": "confirmed", "arguments_edited": te.original_arguments is not None}
    elif req.resolution == "input_provided":
        resolution = {"decision": "input_provided", "input": {f.name: f.value for f in req.user_input_schema or []}}
    elif req.resolution == "result_provided":
        resolution = {"decision": "result_provided", "result": te.result}
    if req.resolution is not None and te.result is not None and "result" not in (resolution or {}):
        resolution = {**(resolution or {}), "outcome": te.result[:2000]}
    return ApprovalEvent(
        approval_id=f"{run_id}/{req.id}",
        seq=seq,
        kind=kind,
        at=at,
        payload=payload or {},
        run_id=run_id,
        requirement_id=req.id,
        session_id=session_id,
        user_id=user_id,
        agent_name=agent_name,
        team_run_id=team_run_id,
        requirement_kind=requirement_kind or req.kind,
        approval_type=approval_type,
        status=status or STATUS[req.resolution],
        context=context,
        arguments_digest=digest(te.arguments),
        created_at=float(req.created_at),
        resolved_by=req.resolved_by,
        resolved_at=float(req.resolved_at) if req.resolved_at is not None else None,
        resolution=resolution,
    )
