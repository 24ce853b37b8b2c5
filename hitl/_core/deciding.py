"""Deciding an approval through the audit API (``PostgresDb.update_approval``): the run decides, the record follows."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hitl._core import client as _client
from hitl._core import registry, runs
from hitl.decisions import Confirm, Reject, refuse_unsafe
from hitl.errors import (
    HitlError,
    InvalidDecisionError,
    InvalidInputError,
    RequirementAlreadyResolvedError,
    RunEndedError,
    TemporalUnavailableError,
)
from hitl.settings import Settings
from hitl.store import approvals as _store
from hitl.store.records import StoredApproval

if TYPE_CHECKING:
    from hitl.agent import Agent
    from hitl.db.postgres import PostgresDb
    from hitl.run import RunOutput


DECIDED = frozenset({"approved", "rejected", "expired", "cancelled"})
_SETTLE = 2.0
"""Seconds to wait for the mirror to show a decision the run already holds, before answering as the record stands."""


async def update_approval(
    db: PostgresDb, approval_id: str, *, expected_status: str | None, status: str, resolved_by: str | None,
    reason: str | None, timeout: float,
) -> StoredApproval | None:
    """See ``PostgresDb.update_approval``: through the agent that made the record (its Temporal
    settings and, for strict workers, its signer), else the environment's Temporal."""
    if status not in ("approved", "rejected"):
        raise InvalidDecisionError(
            f"approval {approval_id!r}: {expected_status or 'pending'} -> {status} is not a decision "
            "(only pending -> approved or rejected)"
        )
    if not isinstance(approval_id, str):
        raise InvalidInputError(f"update_approval: approval_id={approval_id!r} is not a string")
    if expected_status is not None and not isinstance(expected_status, str):
        raise InvalidInputError(f"update_approval: expected_status={expected_status!r} is not a string")
    record = await asyncio.to_thread(_store.record, db, approval_id)
    if record is None:
        return None
    if expected_status in ("pending", None) and db._run_decided(approval_id, status, take=False):
        # Agno's flow: confirmed locally, continue_run decided it, and now the record is "resolved".
        if record.status == "pending":  # the mirror may still be writing the run's decision
            await db.wait_for_records({approval_id: set(DECIDED)}, timeout=min(timeout, _SETTLE))
            record = await asyncio.to_thread(_store.record, db, approval_id)
            if record is None:
                return None
        if record.status == status and db._run_decided(approval_id, status, take=True):
            return record
        if record.status != "pending":
            return None
        # still pending: the run took it toward a quorum, or its mirror lags far behind: decide as below
    if record.status != (expected_status or "pending") or record.status != "pending":
        return None  # not in expected_status, or decided already: nothing to update (a run decides once)
    if status == "approved" and record.requirement_kind != "confirmation":
        raise InvalidDecisionError(
            f"approval {approval_id!r} needs {record.requirement_kind}; provide it with the run's "
            "provide_input/provide_result, not update_approval"
        )
    decision = (
        Confirm(requirement_id=record.requirement_id, resolved_by=resolved_by)
        if status == "approved"
        else Reject(requirement_id=record.requirement_id, reason=reason, resolved_by=resolved_by)
    )
    refuse_unsafe(decision, f"approval {approval_id!r}")
    agent = _agent_named(record.agent_name)
    if agent is not None and agent.signer is not None:  # strict workers take only signed decisions
        decision = agent.signer.signed(decision, run_id=record.run_id, requirement_id=record.requirement_id,
                                       arguments_digest=record.arguments_digest)
    try:
        client = await agent._connect() if agent is not None else await _client.connect(Settings.from_env())
        output = await runs.decide(client, record.run_id, decision)
    except RequirementAlreadyResolvedError:
        return None  # someone decided first: the record is no longer pending (Agno: nothing updated)
    except RunEndedError:
        # Decided and ended before the mirror showed it (then: not pending, None), or ended undecided (terminated).
        if await db.wait_for_records({approval_id: set(DECIDED)}, timeout=min(timeout, _SETTLE)):
            return None
        raise
    except TemporalUnavailableError:
        # No answer (say the update was aborted as the run closed under a storm of deciders): the run tells
        # whether this decision was applied (then the record follows, below) or someone else's (None).
        try:
            stands: RunOutput | None = await runs.get(client, record.run_id)
        except HitlError:
            stands = None
        held = next((r for r in stands.requirements if r.id == record.requirement_id), None) if stands else None
        if stands is None or held is None or held.resolution is None:
            raise
        if held.resolved_by != resolved_by or held.resolution != ("confirmed" if status == "approved" else "rejected"):
            return None
        output = stands
    mine = next((r for r in output.requirements if r.id == record.requirement_id), None)
    short = mine is not None and mine.resolution is None  # a confirmation toward a quorum: still pending
    deadline = asyncio.get_running_loop().time() + timeout
    while True:  # the run decided; the mirror follows within moments (or once PostgreSQL is back)
        updated = await asyncio.to_thread(_store.record, db, approval_id)
        if updated is not None and (updated.status == status or (
                short and resolved_by in (updated.context.get("approvals") or []))):
            return updated
        if asyncio.get_running_loop().time() > deadline:
            raise HitlError(f"approval {approval_id!r} was decided by its run but is not mirrored yet "
                            f"(after {timeout:g} s): is PostgreSQL reachable from the worker?")
        await asyncio.sleep(0.01)


def _agent_named(name: str) -> Agent | None:
    """The agent that made the record, if this process defines it."""
    return registry.find(name)
