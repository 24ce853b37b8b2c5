"""Read-your-writes between a run and its approval records in PostgreSQL.

The run's worker writes the records (an activity beside the run's loop), so a caller told "paused"
could query ``get_approvals`` a few milliseconds before the row is committed. Agno writes the row
before ``run()`` returns and its code queries at once; so does hitl's caller, here: before a call
hands a run back, it waits until the records that run shows are in PostgreSQL as it shows them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hitl.decisions import Decision, Reject
from hitl.run import RunOutput, RunStatus
from hitl.store import approvals as _store
from hitl.store.records import StoredApproval

if TYPE_CHECKING:
    from hitl.agent import Agent
    from hitl.db.postgres import PostgresDb

log = logging.getLogger("hitl")
DECIDED = frozenset({"approved", "rejected", "expired", "cancelled"})
WAIT_SECONDS = 10.0
"""How long a call waits for its records before it returns anyway (PostgreSQL down: the worker keeps
writing them, and a warning says so)."""


def approval_id(run_id: str, requirement_id: str) -> str:
    """The record's id: ``<run_id>/<requirement_id>``; a team member's requirement id already is one."""
    return requirement_id if "/" in requirement_id else f"{run_id}/{requirement_id}"


def _db_for(agent: Agent, requirement_id: str) -> PostgresDb | None:
    """Where the record of a requirement is written: a team member's own db, else the agent's (team's)."""
    members = getattr(agent, "members", None)
    if members and "/" in requirement_id:
        member_run = requirement_id.split("/", 1)[0]
        for name, member in members.items():
            if f".{name}." in member_run and member.db is not None:
                found: PostgresDb = member.db
                return found
    return agent.db


def status_of(decision: Decision) -> str:
    """The record status a decision gives (a confirmation toward a quorum may leave it pending)."""
    return "rejected" if isinstance(decision, Reject) else "approved"


async def settled(agent: Agent, output: RunOutput, decisions: Sequence[Decision]) -> None:
    """Wait until the records ``output`` shows (and those ``decisions`` decided) are committed as shown,
    in the databases the agent's (and its members') approvals are written to."""
    await _settle(output, decisions, lambda requirement_id: _db_for(agent, requirement_id))


async def settled_in(db: PostgresDb, output: RunOutput, decisions: Sequence[Decision]) -> None:
    """:func:`settled` for callers that know the table (the decision service)."""
    await _settle(output, decisions, lambda requirement_id: db)


async def _settle(output: RunOutput, decisions: Sequence[Decision], db_for: Any) -> None:
    wanted: dict[int, tuple[PostgresDb, dict[str, set[str]]]] = {}

    def want(requirement_id: str, statuses: set[str]) -> None:
        db = db_for(requirement_id)
        if db is not None:
            wanted.setdefault(id(db), (db, {}))[1][approval_id(output.run_id, requirement_id)] = statuses

    shown = {r.id: r for r in output.requirements}
    if output.status == RunStatus.paused:
        for req in output.requirements:
            if req.resolution is None:
                want(req.id, {"pending"})
    for d in decisions:
        seen = shown.get(d.requirement_id)
        if seen is not None and seen.resolution is None:
            continue  # still pending (a quorum): the line above waits for it
        want(d.requirement_id, set(DECIDED))
    for db, expected in wanted.values():
        if not await db.wait_for_records(expected, timeout=WAIT_SECONDS):
            log.warning("run %s: %d approval record(s) not yet in %s after %g s; the worker keeps writing them",
                        output.run_id, len(expected), db.approvals_table, WAIT_SECONDS)
    decided: dict[int, tuple[PostgresDb, dict[str, str]]] = {}
    for d in decisions:  # update_approval on them, as Agno's examples do next, answers with the record once
        db = db_for(d.requirement_id)
        if db is not None:
            decided.setdefault(id(db), (db, {}))[1][approval_id(output.run_id, d.requirement_id)] = status_of(d)
    for db, by_id in decided.values():
        db.remember_run_decisions(by_id)


async def attach_approval(agent: Agent, output: RunOutput) -> None:
    """``metadata["approval"]``: the run's latest decided approval record (Agno's admin path)."""
    db = agent.db
    if db is None:
        return
    import asyncio

    records: list[StoredApproval] = []
    for key in ("run_id", "team_run_id"):
        records += await asyncio.to_thread(_store.records, db, None, {key: output.run_id}, sort_by="created_at",
                                           sort_order="desc", limit=100, offset=0)
    decided = [r for r in records if r.status in DECIDED]
    if decided:
        latest = max(decided, key=lambda r: (r.resolved_at or 0, r.created_at or 0))
        output.metadata = {**(output.metadata or {}), "approval": latest.agno()}  # Agno's record dict, as get_approval
