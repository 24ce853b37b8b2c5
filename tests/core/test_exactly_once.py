"""A rejected call never runs, an approved one runs once: under storms of callers, dead workers, a dead server."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from hitl import PostgresDb, RunOutput, RunStatus, tool
from tests.storm import MIXED, check_losers, storm

ran: list[str] = []


@tool(requires_confirmation=True)
def transfer(amount: int, to: str) -> str:
    """Move money."""
    ran.append(f"{amount}->{to}")
    return f"sent {amount} to {to}"


def one_transfer(script):
    return script({"turns": [{"tool_calls": [{"name": "transfer", "arguments": {"amount": 250, "to": "acme"}}]},
                              {"content": "{results}"}]})


async def final_output(client, run_id: str) -> RunOutput:
    return RunOutput.model_validate(await asyncio.wait_for(client.get_workflow_handle(run_id).result(), 60))


async def settled_events(db: PostgresDb, approval_id: str) -> list[str]:
    for _ in range(400):
        record = await asyncio.to_thread(db.get_approval, approval_id)
        if record is not None and record["status"] != "pending":
            events = await asyncio.to_thread(db.get_approval_events, approval_id)
            if any(e["kind"] in ("confirmed", "rejected") for e in events):
                return [e["kind"] for e in events]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{approval_id} never settled")


@pytest.mark.parametrize("callers,trials,vias", [
    (20, 4, MIXED), (50, 2, MIXED),
    (20, 4, ("update",)),  # past the server's 10 updates in flight: it aborts some, with their workflow tasks
])
async def test_a_storm_of_decisions_records_one_and_runs_the_tool_iff_it_confirms(
        make_agent, script, running_worker, db, client, callers, trials, vias):
    """Updates, signals and update_approval at once, confirm and reject mixed: one decision, and the tool runs iff it confirms."""
    agent = make_agent(one_transfer(script), [transfer], db=db)
    async with running_worker():
        for trial in range(trials):
            ran.clear()
            paused = await agent.arun("send it")
            s = await storm(agent, db, client, paused, callers, seed=trial * 1000 + callers, vias=vias)
            done = await final_output(client, paused.run_id)
            [req] = done.requirements
            assert done.status == RunStatus.completed and req.resolution in ("confirmed", "rejected")
            winner = req.resolved_by
            assert winner is not None and any(c.name == winner for c in s.callers)
            confirmed = req.resolution == "confirmed"
            assert ran == (["250->acme"] if confirmed else []), (trial, req.resolution, ran)
            assert ("sent 250 to acme" in (done.content or "")) == confirmed
            check_losers(s, winner)
            kinds = await settled_events(db, f"{paused.run_id}/{req.id}")
            assert kinds[0] == "requested" and sum(k in ("confirmed", "rejected") for k in kinds) == 1, kinds
            assert set(kinds) <= {"requested", "confirmed", "rejected", "refused"}, kinds
            record = await asyncio.to_thread(db.get_approval, f"{paused.run_id}/{req.id}")
            assert record["status"] == ("approved" if confirmed else "rejected") and record["resolved_by"] == winner


slow_ran: list[str] = []


@tool(requires_confirmation=True, idempotent=False, timeout=timedelta(seconds=3))
def slow_charge(n: int) -> str:
    """A one-second charge that must never run twice."""
    time.sleep(1)
    slow_ran.append(str(n))
    return f"charged {n}"


async def test_thirty_slow_sync_tools_confirmed_at_once_finish_without_an_uncertain_outcome(
        make_agent, script, running_worker):
    """30 confirmations of a 1 s sync tool with a 3 s timeout: each gets a thread at once, none times out."""
    slow_ran.clear()
    model = script({"match": r"charge (\d+)", "turns": [{"tool_calls": [{"name": "slow_charge", "arguments": {"n": "{num:1}"}}]},
                                                         {"content": "{results}"}]})
    agent = make_agent(model, [slow_charge])
    async with running_worker():
        paused = await asyncio.gather(*(agent.arun(f"charge {i}") for i in range(30)))
        for p in paused:
            p.active_requirements[0].confirm()
        done = await asyncio.gather(*(agent.acontinue_run(p.run_id, p.requirements) for p in paused))
    assert [d.status for d in done] == [RunStatus.completed] * 30, [(d.status, d.requirements) for d in done]
    assert all(not r.uncertain_outcome for d in done for r in d.requirements)
    assert sorted(d.content for d in done) == sorted(f"charged {i}" for i in range(30))
    assert sorted(slow_ran, key=int) == [str(i) for i in range(30)]


def test_only_updates_the_server_turned_away_unapplied_are_sent_again():
    """An update dropped with a workflow task the server refused (WorkflowNotReady), or refused for
    too many in flight, was never applied: hitl sends it again. Any other refusal is the caller's."""
    from google.protobuf.any_pb2 import Any as AnyDetail
    from temporalio.api.common.v1 import GrpcStatus
    from temporalio.api.errordetails.v1 import WorkflowNotReadyFailure
    from temporalio.service import RPCError, RPCStatusCode

    from hitl._core.runs import _not_taken

    def refused(status: RPCStatusCode, *details) -> RPCError:
        packed = []
        for d in details:
            packed.append(AnyDetail())
            packed[-1].Pack(d)
        return RPCError("refused", status, GrpcStatus(code=int(status), details=packed).SerializeToString())

    not_ready = WorkflowNotReadyFailure()
    assert _not_taken(refused(RPCStatusCode.FAILED_PRECONDITION, not_ready))
    assert _not_taken(refused(RPCStatusCode.RESOURCE_EXHAUSTED))
    assert not _not_taken(refused(RPCStatusCode.FAILED_PRECONDITION))  # e.g. the run's update limit
    assert not _not_taken(refused(RPCStatusCode.NOT_FOUND, not_ready))
