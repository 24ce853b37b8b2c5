"""Deciding an approval through the audit API (``PostgresDb.update_approval``): the run decides, the record follows."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hitl import _client, _registry, _runs
from hitl.config import Settings
from hitl.decisions import Confirm, Reject, refuse_unsafe
from hitl.errors import (
    ApprovalConflictError,
    ConfigurationError,
    HitlError,
    InvalidDecisionError,
    RequirementAlreadyResolvedError,
    RequirementNotFoundError,
)

if TYPE_CHECKING:
    from hitl.agent import Agent
    from hitl.db.postgres import PostgresDb


async def update_approval(
    db: PostgresDb, approval_id: str, *, expected_status: str, status: str, resolved_by: str | None, reason: str | None,
    timeout: float,
) -> dict[str, Any]:
    """See ``PostgresDb.update_approval``: through the agent that made the record (its Temporal
    settings and, for strict workers, its signer), else the environment's Temporal."""
    record = await asyncio.to_thread(db.get_approval, approval_id)
    if record is None:
        raise RequirementNotFoundError(f"no approval {approval_id!r} in table {db.approvals_table!r}")
    if record["status"] != expected_status:
        by = f" by {record['resolved_by']}" if record.get("resolved_by") else ""
        raise ApprovalConflictError(
            f"approval {approval_id!r} is {record['status']}{by}, not {expected_status}: someone decided first"
        )
    if status not in ("approved", "rejected") or record["status"] != "pending":
        raise InvalidDecisionError(
            f"approval {approval_id!r}: {record['status']} -> {status} is not a decision "
            "(only pending -> approved or rejected)"
        )
    if status == "approved" and record["requirement_kind"] != "confirmation":
        raise InvalidDecisionError(
            f"approval {approval_id!r} needs {record['requirement_kind']}; provide it with the run's "
            "provide_input/provide_result, not update_approval"
        )
    decision = (
        Confirm(requirement_id=record["requirement_id"], resolved_by=resolved_by)
        if status == "approved"
        else Reject(requirement_id=record["requirement_id"], reason=reason, resolved_by=resolved_by)
    )
    refuse_unsafe(decision, f"approval {approval_id!r}")
    agent = _agent_named(record["agent_name"])
    if agent is not None and agent.signer is not None:  # strict workers take only signed decisions
        decision = agent.signer.signed(decision, run_id=record["run_id"], requirement_id=record["requirement_id"],
                                       arguments_digest=record["arguments_digest"])
    try:
        client = await agent._connect() if agent is not None else await _client.connect(Settings.from_env())
        output = await _runs.decide(client, record["run_id"], decision)
    except RequirementAlreadyResolvedError as exc:
        raise ApprovalConflictError(f"approval {approval_id!r}: someone decided first: {exc}") from None
    mine = next((r for r in output.requirements if r.id == record["requirement_id"]), None)
    short = mine is not None and mine.resolution is None  # a confirmation toward a quorum: still pending
    deadline = asyncio.get_running_loop().time() + timeout
    while True:  # the run decided; the mirror follows within moments (or once PostgreSQL is back)
        updated = await asyncio.to_thread(db.get_approval, approval_id)
        if updated is not None and (updated["status"] == status or (
                short and resolved_by in (updated["context"].get("approvals") or []))):
            return updated
        if asyncio.get_running_loop().time() > deadline:
            raise HitlError(f"approval {approval_id!r} was decided by its run but is not mirrored yet "
                            f"(after {timeout:g} s): is PostgreSQL reachable from the worker?")
        await asyncio.sleep(0.05)


def _agent_named(name: str) -> Agent | None:
    """The agent that made the record, if this process defines it."""
    try:
        return _registry.get(name)
    except ConfigurationError:
        return None
