"""Agno's approval records on PostgresDb: its update_approval answers (None, and the record once after
continue_run) and wait_for_records. Real PostgreSQL, Temporal and scripted model."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from hitl import InvalidDecisionError, PostgresDb, tool
from hitl._wire import ApprovalEvent
from hitl.approval import approval
from hitl.workflows.audit import digest

T0 = 1_800_000_000.0


@approval
@tool(requires_confirmation=True)
def delete_user_data(user_id: str) -> str:
    """Delete a user's data."""
    return f"deleted {user_id}"


def event(n: int, seq: int = 1, status: str = "pending", *, agent: str = "agent", team_run_id: str | None = None,
          user: str | None = None, kind: str = "confirmation", at: float | None = None) -> ApprovalEvent:
    """Approval ``n``'s event ``seq``, as the mirror writes it."""
    return ApprovalEvent(
        approval_id=f"run-{n}/req-1", seq=seq, kind="requested" if seq == 1 else {"approved": "confirmed"}.get(status, status),
        at=at if at is not None else T0 + n * 10 + seq, run_id=f"run-{n}", requirement_id="req-1", agent_name=agent,
        team_run_id=team_run_id, user_id=user, requirement_kind=kind, approval_type="required", status=status,
        context={"tool_name": "pay", "tool_call_id": "call_0_0", "arguments": {"amount": n}},
        arguments_digest=digest({"amount": n}), created_at=T0 + n * 10, resolved_by="ann" if status != "pending" else None,
        resolved_at=T0 + n * 10 + seq if status != "pending" else None,
    )


async def settled(db: PostgresDb, expected: dict[str, set[str]]) -> None:
    assert await db.wait_for_records(expected, timeout=20), expected


def one_call(script, name: str, arguments: dict) -> str:
    return script({"turns": [{"tool_calls": [{"name": name, "arguments": arguments}]}, {"content": "{results}"}]})


# ---------------------------------------------------------------------------------------------- update_approval
async def test_update_approval_answers_none_as_agnos_does(make_agent, script, running_worker, db):
    """Unknown id, or no longer in expected_status: None (B4's `double is None`); a status that is no decision raises."""
    agent = make_agent(one_call(script, "delete_user_data", {"user_id": "U-2"}), [delete_user_data], db=db)
    async with running_worker():
        run = await agent.arun("delete U-2")
        approval_id = f"{run.run_id}/{run.requirements[0].id}"
        await settled(db, {approval_id: {"pending"}})
        assert db.update_approval("no-such/req-1", expected_status="pending", status="approved") is None
        with pytest.raises(InvalidDecisionError, match="pending -> expired"):
            db.update_approval(approval_id, expected_status="pending", status="expired")
        assert db.update_approval(approval_id, expected_status="approved", status="rejected") is None
        resolved = await asyncio.to_thread(db.update_approval, approval_id, expected_status="pending",
                                           status="approved", resolved_by="admin", resolved_at=int(time.time()))
        assert resolved is not None and resolved["status"] == "approved" and resolved["resolved_by"] == "admin"
        double = await asyncio.to_thread(db.update_approval, approval_id, expected_status="pending",
                                         status="approved", resolved_by="admin")
        assert double is None
        assert await db.aupdate_approval(approval_id, expected_status=None, status="rejected") is None
    assert [e["kind"] for e in db.get_approval_events(approval_id)] == ["requested", "confirmed"]


async def test_update_approval_after_continue_run_returns_the_record_once(make_agent, script, running_worker, db):
    """Agno's flow: confirm locally, continue_run, update_approval(pending -> approved): the record once, then None.

    Nothing is written: who decided stays who decided in the run."""
    agent = make_agent(one_call(script, "delete_user_data", {"user_id": "U-3"}), [delete_user_data], db=db)
    async with running_worker():
        run = await agent.arun("delete U-3")
        approval_id = f"{run.run_id}/{run.requirements[0].id}"
        await settled(db, {approval_id: {"pending"}})
        assert db.get_approvals(status="pending")[1] >= 1
        run.requirements[0].confirm(resolved_by="alice")
        done = await agent.acontinue_run(run.run_id, run.requirements)
        assert not done.is_paused
        db.remember_run_decisions({approval_id: "approved"})  # what Agent.continue_run tells its db
        resolved = await asyncio.to_thread(db.update_approval, approval_id, expected_status="pending", status="approved",
                                           resolved_by="test_user", resolved_at=int(time.time()))
        assert resolved is not None and resolved["status"] == "approved" and resolved["resolved_by"] == "alice"
        assert db.get_pending_approval_count() == 0
        assert db.update_approval(approval_id, expected_status="pending", status="approved") is None  # once
    assert [e["kind"] for e in db.get_approval_events(approval_id)] == ["requested", "confirmed"]
    assert db.verify_trail().problems == []


async def test_the_remembered_answer_waits_for_the_mirror_and_is_only_for_the_runs_decision(db):
    """The run's decision still on its way to PostgreSQL: update_approval waits for it; another status gets None."""
    await db.write_events([event(1), event(2), event(3, kind="external_execution")])
    db.remember_run_decisions({"run-1/req-1": "approved", "run-2/req-1": "rejected", "run-3/req-1": "approved"})

    async def later() -> None:
        await asyncio.sleep(0.3)
        await db.write_events([event(1, 2, "approved"), event(2, 2, "rejected"), event(3, 2, "approved")])

    writing = asyncio.create_task(later())
    record = await db.aupdate_approval("run-1/req-1", expected_status="pending", status="approved", resolved_by="x")
    await writing
    assert record["status"] == "approved" and record["resolved_by"] == "ann"
    assert await db.aupdate_approval("run-2/req-1", status="approved") is None  # the run rejected it
    assert (await db.aupdate_approval("run-2/req-1", status="rejected"))["status"] == "rejected"
    assert (await db.aupdate_approval("run-3/req-1", status="approved"))["requirement_kind"] == "external_execution"
    assert await db.aupdate_approval("run-3/req-1", status="approved") is None
    with pytest.raises(Exception, match="approved"):
        db.remember_run_decisions({"run-4/req-1": "expired"})


def test_remembered_decisions_are_bounded(db):
    """The least recently noted go first."""
    db.RUN_DECISIONS_KEPT = 3
    for n in range(5):
        db.remember_run_decisions({f"run-{n}/req-1": "approved"})
    db.remember_run_decisions({"run-2/req-1": "approved"})  # noted again: the newest
    db.remember_run_decisions({"run-5/req-1": "rejected"})
    assert list(db._run_decisions) == ["run-4/req-1", "run-2/req-1", "run-5/req-1"]


# ---------------------------------------------------------------------------------------------- wait_for_records
async def test_wait_for_records_waits_for_each_status_and_times_out_with_a_warning(db, caplog):
    """True once every record is there as expected; False after the timeout, said in the log."""
    assert await db.wait_for_records({}) is True
    await db.write_events([event(1)])

    async def later() -> None:
        await asyncio.sleep(0.2)
        await db.write_events([event(1, 2, "approved"), event(2)])

    writing = asyncio.create_task(later())
    started = time.monotonic()
    assert await db.wait_for_records({"run-1/req-1": {"approved", "rejected"}, "run-2/req-1": {"pending"}}, timeout=10)
    assert time.monotonic() - started < 5
    await writing
    with caplog.at_level(logging.WARNING, logger="hitl.db.postgres"):
        started = time.monotonic()
        assert await db.wait_for_records({"run-1/req-1": {"pending"}, "run-9/req-1": {"pending"}}, timeout=0.3) is False
    assert 0.3 <= time.monotonic() - started < 3
    assert "run-9/req-1" in caplog.text and "absent" in caplog.text


async def test_wait_for_records_answers_false_when_postgresql_is_unreachable(caplog):
    """No PostgreSQL: False within the timeout, not an exception (the worker keeps writing meanwhile)."""
    db = PostgresDb("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1", approvals_table="unreachable")
    db._migrated = True  # as after a first use: the pools are what fails
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="hitl.db.postgres"):
            assert await db.wait_for_records({"run-1/req-1": {"pending"}}, timeout=1.0) is False
        assert time.monotonic() - started < 5 and "unreachable" in caplog.text
    finally:
        await db.aclose()
