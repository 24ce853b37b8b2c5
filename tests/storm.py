"""A storm of concurrent decisions on one paused run, and the checks every storm must pass.

Callers mix the ``continue_run`` update, the signals and ``update_approval``, confirm and reject,
each under its own name, so the winner can be told from the run's result.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from hitl import ApprovalConflictError, HitlError, PostgresDb, RequirementAlreadyResolvedError, RunOutput
from hitl.agent import Agent


@dataclass
class Caller:
    name: str
    via: str  # update, signal, update_approval
    confirm: bool
    result: Any = None
    error: BaseException | None = None


@dataclass
class Storm:
    run_id: str
    requirement_id: str
    callers: list[Caller] = field(default_factory=list)


async def wait_for_record(db: PostgresDb, approval_id: str, timeout: float = 20) -> dict[str, Any]:
    for _ in range(int(timeout * 20)):
        record = await asyncio.to_thread(db.get_approval, approval_id)
        if record is not None:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"approval {approval_id} was never mirrored")


MIXED = ("update", "update", "signal", "update_approval")


async def storm(agent: Agent, db: PostgresDb, client: Client, paused: RunOutput, callers: int, seed: int,
                vias: tuple[str, ...] = MIXED) -> Storm:
    """Send ``callers`` decisions on the paused run's one requirement at once, each by one of ``vias``."""
    rng = random.Random(seed)
    [req] = paused.active_requirements
    await wait_for_record(db, f"{paused.run_id}/{req.id}")
    result = Storm(paused.run_id, req.id)
    for i in range(callers):
        result.callers.append(Caller(f"caller-{seed}-{i}", rng.choice(vias),
                                     rng.random() < 0.5))

    async def send(c: Caller) -> None:
        try:
            if c.via == "update":
                copy = RunOutput.model_validate(paused.model_dump())
                r = copy.requirements[0]
                r.confirm(resolved_by=c.name) if c.confirm else r.reject(reason=f"no from {c.name}", resolved_by=c.name)
                c.result = await agent.acontinue_run(copy.run_id, copy.requirements)
            elif c.via == "signal":
                payload = {"requirement_id": req.id, "resolved_by": c.name}
                if not c.confirm:
                    payload["reason"] = f"no from {c.name}"
                try:
                    await client.get_workflow_handle(paused.run_id).signal("confirm" if c.confirm else "reject", payload)
                except RPCError as exc:  # a signal to a run that has already ended
                    if exc.status != RPCStatusCode.NOT_FOUND:
                        raise
            else:
                c.result = await db.aupdate_approval(f"{paused.run_id}/{req.id}", status="approved" if c.confirm else "rejected",
                                                     resolved_by=c.name, reason=None if c.confirm else f"no from {c.name}")
        except BaseException as exc:  # noqa: BLE001 - every outcome is checked by the caller
            c.error = exc

    await asyncio.gather(*(send(c) for c in result.callers))
    return result


def check_losers(s: Storm, winner: str) -> None:
    """The winner's call succeeded; every other update caller got a clear HitlError naming the winner,
    and every other update_approval caller None, as Agno's update_approval answers when the record is
    no longer pending."""
    for c in s.callers:
        if c.via == "signal":
            assert c.error is None, (c, c.error)
            continue
        if c.name == winner:
            assert c.error is None, (c.name, c.error)
            continue
        if c.via == "update_approval":
            assert c.error is None and c.result is None, (c.name, c.result, repr(c.error))
            continue
        assert isinstance(c.error, (RequirementAlreadyResolvedError, ApprovalConflictError)), (c.name, c.via, repr(c.error))
        assert isinstance(c.error, HitlError) and winner in str(c.error), (c.name, str(c.error))
