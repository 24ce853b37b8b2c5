"""The audit trail, continued: audit-only approvals, migrations, several pauses, continue-as-new,
remembered approvals and decisions through the trail (helpers in tests/store/test_audit.py)."""

from __future__ import annotations

import asyncio
import uuid

from hitl import PostgresDb, RunStatus, tool
from hitl.approval import approval
from tests.store.test_audit import one_transfer, settled, sql, transfer


async def test_audit_approval_records_the_call_without_blocking(make_agent, script, running_worker, db):
    """@approval(type=ApprovalType.audit): the tool runs at once and the call is recorded."""
    from hitl.approval import ApprovalType

    @approval(type=ApprovalType.audit)
    @tool
    def read_ledger(account: str) -> str:
        """Read a ledger."""
        return f"ledger of {account}: 42"

    model = script({"turns": [{"tool_calls": [{"name": "read_ledger", "arguments": {"account": "acme"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [read_ledger], db=db)
    async with running_worker():
        response = await agent.arun("read it")
        assert response.status == RunStatus.completed and response.pauses == 0
        [(approval_id, status)] = await settled(db, response.run_id, 1, "approved")
    record = db.get_approval(approval_id)
    assert record["approval_type"] == "audit" and record["requirement_kind"] == "none"
    assert record["resolved_by"] == "policy:audit" and record["context"]["arguments"] == {"account": "acme"}
    assert record["resolution"]["outcome"] == "ledger of acme: 42"
    assert [e["kind"] for e in db.get_approval_events(approval_id)] == ["executed"]


def test_migrations_are_safe_from_several_workers_at_once(database_url):
    """Four processes' worth of first uses migrate one fresh schema concurrently, once."""
    from concurrent.futures import ThreadPoolExecutor

    from hitl.store import schema as _schema

    table = f"approvals_{uuid.uuid4().hex[:8]}"
    dbs = [PostgresDb(database_url, approvals_table=table) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda d: d.migrate(), dbs))
    versions = sql(dbs[0], "SELECT version FROM hitl_schema_migrations WHERE approvals_table = %s ORDER BY version", table)
    assert versions == [(v,) for v in range(1, len(_schema.MIGRATIONS) + 1)] and len(versions) >= 6
    assert dbs[0].get_pending_approval_count() == 0
    for d in dbs:
        d.close()


async def test_sequential_approvals_leave_one_record_per_pause(make_agent, script, running_worker, db):
    """A run that pauses twice leaves two records, each with its own pause's decision."""
    model = script({"turns": [
        {"tool_calls": [{"name": "transfer", "arguments": {"amount": 1, "to_account": "a"}}]},
        {"tool_calls": [{"name": "transfer", "arguments": {"amount": 2, "to_account": "b"}}]},
        {"content": "{results}"}]})
    agent = make_agent(model, [transfer], db=db)
    async with running_worker():
        response = await agent.arun("two transfers")
        response.active_requirements[0].confirm(resolved_by="first")
        response = await agent.acontinue_run(response.run_id, response.requirements)
        response.active_requirements[0].reject(reason="enough", resolved_by="second")
        await agent.acontinue_run(response.run_id, response.requirements)
        for _ in range(100):
            records, total = db.get_approvals(run_id=response.run_id, sort_by="created_at", sort_order="asc")
            if total == 2 and all(r["status"] != "pending" for r in records):
                break
            await asyncio.sleep(0.05)
    assert [(r["status"], r["resolved_by"], r["context"]["arguments"]["amount"]) for r in records] == [
        ("approved", "first", 1), ("rejected", "second", 2)]


async def test_records_survive_continue_as_new(make_agent, script, running_worker, db, client):
    """A run that continues-as-new several times leaves every pause's record, each decided once."""
    model = script({"turns": [
        *[{"tool_calls": [{"name": "transfer", "arguments": {"amount": n, "to_account": "a"}}]} for n in range(1, 7)],
        {"content": "{results}"}]})
    agent = make_agent(model, [transfer], db=db, history_event_limit=20)
    async with running_worker():
        response = await agent.arun("six transfers")
        first_run = (await client.get_workflow_handle(response.run_id).describe()).run_id
        while response.is_paused:
            response.active_requirements[0].confirm(resolved_by=f"approver-{response.pauses}")
            response = await agent.acontinue_run(response.run_id, response.requirements)
        assert (await client.get_workflow_handle(response.run_id).describe()).run_id != first_run
        for _ in range(100):
            records, total = db.get_approvals(run_id=response.run_id, sort_by="created_at", sort_order="asc")
            if total == 6 and all(r["status"] == "approved" for r in records):
                break
            await asyncio.sleep(0.05)
    assert sorted(r["resolved_by"] for r in records) == [f"approver-{n}" for n in range(1, 7)]
    for r in records:
        assert [e["kind"] for e in db.get_approval_events(r["id"])] == ["requested", "confirmed"]
    assert db.verify_event_chain() is None


async def test_remembered_approval_runs_later_calls_and_records_them(make_agent, script, running_worker, db):
    """confirm(remember=True): later calls of the tool in this run do not pause and are recorded as remembered."""
    model = script({"turns": [
        *[{"tool_calls": [{"name": "transfer", "arguments": {"amount": n, "to_account": "a"}}]} for n in (1, 2, 3)],
        {"content": "{results}"}]})
    agent = make_agent(model, [transfer], db=db)
    async with running_worker():
        response = await agent.arun("three transfers")
        response.active_requirements[0].confirm(resolved_by="alice", remember=True)
        done = await agent.acontinue_run(response.run_id, response.requirements)
        assert done.status == RunStatus.completed and done.pauses == 1
        for _ in range(100):
            records, total = db.get_approvals(run_id=response.run_id, sort_by="created_at", sort_order="asc")
            if total == 3 and all(r["status"] == "approved" for r in records):
                break
            await asyncio.sleep(0.05)
    assert done.content == "sent 3 to a"
    assert [r["resolved_by"] for r in records] == ["alice", "alice", "alice"]
    first, *later = records
    assert db.get_approval_events(first["id"])[1]["payload"]["remember"] is True
    for r in later:
        [event] = db.get_approval_events(r["id"])
        assert event["payload"] == {"via": "remembered", "remembered_from": first["id"]}


async def test_update_approval_toward_a_quorum_returns_the_pending_record_with_its_approver(make_agent, script, running_worker, db):
    """One of two approvers confirms through update_approval: the record comes back pending, the approver on it, at once."""
    from hitl.approval import approval as approval_of

    @approval_of(approvers=["ann", "ben"], quorum=2)
    @tool(requires_confirmation=True)
    def wire(amount: int) -> str:
        """Wire money."""
        return f"wired {amount}"

    model = script({"turns": [{"tool_calls": [{"name": "wire", "arguments": {"amount": 9}}]}, {"content": "{results}"}]})
    agent = make_agent(model, [wire], db=db)
    async with running_worker():
        response = await agent.arun("wire")
        [(approval_id, _)] = await settled(db, response.run_id, 1)
        record = await db.aupdate_approval(approval_id, status="approved", resolved_by="ann", timeout=10)
        assert record["status"] == "pending" and record["context"]["approvals"] == ["ann"]
        record = await db.aupdate_approval(approval_id, status="approved", resolved_by="ben", timeout=10)
        assert record["status"] == "approved"


async def test_update_approval_reaches_the_run_through_its_agents_temporal_settings(
        make_agent, script, running_worker, db, temporal_server, monkeypatch):
    """The agent names its Temporal address; update_approval uses it, whatever TEMPORAL_ADDRESS says."""
    agent = make_agent(one_transfer(script), [transfer], db=db, temporal_address=temporal_server["address"])
    async with running_worker():
        response = await agent.arun("transfer")
        [(approval_id, _)] = await settled(db, response.run_id, 1)
        monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
        record = await db.aupdate_approval(approval_id, status="rejected", resolved_by="ops", reason="no", timeout=10)
    assert record["status"] == "rejected" and record["resolved_by"] == "ops"
