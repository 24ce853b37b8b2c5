"""Agno's approval records on PostgresDb: the keys Agno code reads, its get_approvals keywords, its
update_approval answers (None, and the record once after continue_run), delete_approval as a tombstone
the trail keeps, and wait_for_records. Real PostgreSQL, Temporal and scripted model."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import psycopg
import pytest

from hitl import Agent, InvalidDecisionError, OpenAIChat, PostgresDb, RunStatus, tool
from hitl._wire import ApprovalEvent, digest
from hitl.approval import approval
from hitl.store import schema
from hitl.team import Team

T0 = 1_800_000_000.0
AGNO_KEYS = {"id", "run_id", "session_id", "status", "source_type", "approval_type", "pause_type", "tool_name",
             "tool_args", "expires_at", "agent_id", "team_id", "workflow_id", "user_id", "schedule_id",
             "schedule_run_id", "source_name", "context", "resolution_data", "resolved_by", "resolved_at",
             "created_at", "updated_at", "run_status"}


@approval
@tool(requires_confirmation=True)
def delete_user_data(user_id: str) -> str:
    """Delete a user's data."""
    return f"deleted {user_id}"


@approval
@tool(external_execution=True)
def deploy_to_production(service_name: str, version: str) -> str:
    """Deploy a service (done elsewhere)."""
    return "never"


def sql(db: PostgresDb, query: str, *params):
    with psycopg.connect(db.db_url, autocommit=True) as conn:
        cursor = conn.execute(query.replace("{t}", db.approvals_table), params)
        return cursor.fetchall() if cursor.description else []


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


# ---------------------------------------------------------------------------------------------- record keys
async def test_an_agents_record_has_agnos_keys_beside_hitls(make_agent, script, running_worker, db):
    """get_approvals, get_approval and update_approval answer with Agno's keys, computed from the row; hitl's stay."""
    agent = make_agent(one_call(script, "delete_user_data", {"user_id": "U-1"}), [delete_user_data], db=db)
    async with running_worker():
        run = await agent.arun("delete U-1", session_id="s-1", user_id="u-9")
        approval_id = f"{run.run_id}/{run.requirements[0].id}"
        await settled(db, {approval_id: {"pending"}})
        [record], total = db.get_approvals(status="pending")
        assert total == 1 and AGNO_KEYS <= set(record)
        assert record["source_type"] == "agent" and record["source_name"] == agent.name
        assert record["agent_id"] == agent.name and record["team_id"] is None
        assert record["pause_type"] == "confirmation" == record["requirement_kind"]
        assert record["tool_name"] == "delete_user_data" and record["tool_args"] == {"user_id": "U-1"}
        assert record["workflow_id"] is None and record["schedule_id"] is None
        assert record["run_status"] == RunStatus.paused.value
        assert isinstance(record["updated_at"], int) and record["updated_at"] >= record["created_at"]
        context = record["context"]
        assert context["tool_names"] == ["delete_user_data"] and context["source_name"] == agent.name
        assert context["tool_name"] == "delete_user_data" and context["arguments"] == {"user_id": "U-1"}  # kept
        assert record["session_id"] == "s-1" and record["user_id"] == "u-9" and record["agent_name"] == agent.name
        assert db.get_approval(approval_id) == record
        decided = await db.aupdate_approval(approval_id, status="approved", resolved_by="test_user")
    assert AGNO_KEYS <= set(decided) and decided["status"] == "approved" and decided["run_status"] is None
    assert decided["resolved_by"] == "test_user" and decided["updated_at"] >= record["updated_at"]
    assert decided["resolution_data"] == decided["resolution"]


async def test_a_team_members_record_is_the_teams(model_server, script, task_queue, running_worker, db):
    """A member without a db records into its team's: source_type team, source_name and team_id the team's name."""
    suffix = uuid.uuid4().hex[:6]
    member = Agent(OpenAIChat(one_call(script, "deploy_to_production", {"service_name": "payments", "version": "2.1"}),
                              base_url=model_server.base_url),
                   name=f"Deploy Agent {suffix}", role="Deploys", tools=[deploy_to_production], task_queue=task_queue)
    leader = script({"turns": [{"tool_calls": [{"name": "delegate_task_to_member",
                                                "arguments": {"member_id": member.name, "task": "deploy payments"}}]},
                               {"content": "{results}"}]})
    team = Team(members=[member], model=OpenAIChat(leader, base_url=model_server.base_url), db=db,
                name=f"DevOps Team {suffix}", task_queue=task_queue)
    async with running_worker():
        response = await team.arun("deploy payments 2.1")
        [req] = response.active_requirements
        await settled(db, {req.id: {"pending"}})
    [record], total = db.get_approvals(status="pending")
    assert total == 1 and record["team_run_id"] == response.run_id
    assert record["source_type"] == "team" and record["source_name"] == team.name == record["team_id"]
    assert record["agent_id"] == member.name and record["pause_type"] == "external_execution"
    assert record["context"]["source_name"] == team.name and record["context"]["tool_names"] == ["deploy_to_production"]
    assert sql(db, "SELECT team_name FROM {t}") == [(team.name,)]  # written by the mirror
    assert db.get_approvals(source_type="team")[1] == 1 and db.get_approvals(source_type="agent")[1] == 0
    assert db.get_approvals(team_id=team.name)[1] == 1 and db.get_approvals(team_id="other")[1] == 0
    assert db.get_approvals(source_type="workflow")[1] == 0


async def test_team_names_come_from_the_definitions_this_process_has(db):
    """A team's own approval and a member's are the team's; a member of two teams is told apart by the db."""
    suffix = uuid.uuid4().hex[:6]
    member, other = Agent(name=f"m-{suffix}"), Agent(name=f"o-{suffix}")
    team = Team(members=[member], name=f"t-{suffix}", db=db)
    Team(members=[member, other], name=f"u-{suffix}")  # a second team with the same member, another db
    await db.write_events([event(1, agent=team.name), event(2, agent=member.name, team_run_id="run-1"),
                           event(3, agent=other.name, team_run_id="run-9"), event(4, agent="solo")])
    records = {r["run_id"]: r for r in db.get_approvals()[0]}
    assert (records["run-1"]["source_type"], records["run-1"]["source_name"]) == ("team", team.name)
    assert (records["run-2"]["source_type"], records["run-2"]["team_id"]) == ("team", team.name)
    assert (records["run-3"]["source_type"], records["run-3"]["team_id"]) == ("team", f"u-{suffix}")
    assert (records["run-4"]["source_type"], records["run-4"]["source_name"], records["run-4"]["team_id"]) == \
        ("agent", "solo", None)
    assert db.get_approvals(source_type="team")[1] == 3 and db.get_approvals(source_type="agent")[1] == 1


# ---------------------------------------------------------------------------------------------- get_approvals
async def test_agnos_get_approvals_keywords_filter_and_count(db):
    """Every keyword of Agno's get_approvals is taken; workflow_id and schedule_id match nothing."""
    await db.write_events([event(n, user=f"user-{n % 2}", kind="user_input" if n == 3 else "confirmation")
                           for n in range(4)] + [event(0, 2, "approved")])
    assert db.get_approvals(user_id="user-1")[1] == 2 and db.get_approvals(run_id="run-2")[1] == 1
    assert db.get_approvals(agent_id="agent")[1] == 4 and db.get_approvals(agent_id="nobody")[1] == 0
    assert db.get_approvals(pause_type="user_input")[1] == 1 and db.get_approvals(approval_type="required")[1] == 4
    assert db.get_approvals(status="pending", source_type="agent", approval_type="required", pause_type="confirmation",
                            agent_id="agent", team_id=None, workflow_id=None, user_id="user-1", schedule_id=None,
                            run_id="run-1", limit=100, page=1)[1] == 1
    assert db.get_approvals(workflow_id="wf-1") == ([], 0) and db.get_approvals(schedule_id="sch-1") == ([], 0)
    assert db.get_approvals(filters={"source_type": "agent"})[1] == 4
    assert db.get_pending_approval_count() == 3
    assert db.get_pending_approval_count(user_id="user-0") == 1 and db.get_pending_approval_count("user-1") == 2
    assert db.get_pending_approval_count(user_id="nobody") == 0


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
    assert (await db.aupdate_approval("run-3/req-1", status="approved"))["pause_type"] == "external_execution"
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


# ---------------------------------------------------------------------------------------------- delete_approval
def counted(db: PostgresDb, where: str = "TRUE") -> int:
    return sql(db, f"SELECT count(*) FROM {{t}} WHERE deleted_at IS NULL AND {where}")[0][0]


def assert_counts_exact(db: PostgresDb) -> None:
    for status, filters, where in [(None, {}, "TRUE"), ("pending", {}, "status = 'pending'"),
                                   ("approved", {}, "status = 'approved'"), (None, {"tool_name": "pay"}, "TRUE"),
                                   ("approved", {"agent_id": "agent"}, "status = 'approved'"),
                                   (None, {"created_at_gte": T0 + 15, "created_at_lte": T0 + 45},
                                    f"created_at BETWEEN to_timestamp({T0 + 15}) AND to_timestamp({T0 + 45})")]:
        total = db.count_approvals(status, filters)
        assert (total, total.estimated) == (counted(db, where), False), (status, filters)
        assert db.get_approvals(status, filters)[1] == total


async def test_delete_approval_hides_a_decided_record_and_the_trail_keeps_it(db, caplog):
    """A tombstone: hidden from reads and counts, True once; pending refused; the rows, events and verify unchanged."""
    await db.write_events([event(n) for n in range(5)] + [event(n, 2, "approved") for n in (0, 1, 2)]
                          + [event(3, 2, "rejected")])
    events_before = sql(db, "SELECT approval_id, seq, hash FROM {t}_events ORDER BY 1, 2")
    assert_counts_exact(db)
    assert db.delete_approval("run-0/req-1") is True
    assert db.delete_approval("run-0/req-1") is False and db.delete_approval("no-such/req-1") is False
    with caplog.at_level(logging.WARNING, logger="hitl.db.postgres"):
        assert db.delete_approval("run-4/req-1") is False
    assert "pending" in caplog.text and db.get_approval("run-4/req-1")["status"] == "pending"
    assert db.delete_approval("run-3/req-1") is True
    assert db.get_approval("run-0/req-1") is None and db.get_approval("run-0/req-1", include_deleted=True)["id"]
    assert db.get_approval("run-0/req-1", include_deleted=True)["deleted_at"] is not None
    assert {r["id"] for r in db.get_approvals()[0]} == {"run-1/req-1", "run-2/req-1", "run-4/req-1"}
    assert db.get_approvals()[1] == 3 and db.get_approvals(status="approved")[1] == 2
    assert db.get_approvals(include_deleted=True)[1] == 5 and db.count_approvals(include_deleted=True) == 5
    assert db.get_approvals(status="rejected")[1] == 0 and db.get_pending_approval_count() == 1
    assert db.update_approval("run-0/req-1", status="approved") is None
    assert_counts_exact(db)
    db.compact_counts()
    assert_counts_exact(db)
    await db.write_events([event(0, 3, "rejected")])  # a late move of a hidden approval counts nothing
    assert_counts_exact(db)
    assert db.get_approvals(status="rejected")[1] == 0 and db.get_approvals(status="approved")[1] == 2
    assert sql(db, "SELECT count(*) FROM {t}")[0][0] == 5  # no row deleted
    assert sql(db, "SELECT approval_id, seq, hash FROM {t}_events WHERE seq < 3 ORDER BY 1, 2") == events_before
    assert db.verify_trail().problems == [] and db.verify_event_chain() is None
    assert sum(r["total"] for r in db.compliance_report()) == 5  # the report is the trail's


async def test_deleted_approvals_leave_the_services_listing_and_count(db, service):
    """GET /approvals and /approvals/count leave a hidden approval out."""
    await db.write_events([event(n) for n in range(3)] + [event(n, 2, "approved") for n in range(3)])
    assert db.delete_approval("run-1/req-1")
    async with service.client(service.token("auditor", "approvals:read")) as http:
        page = (await http.get("/approvals")).json()
        assert {r["id"] for r in page["data"]} == {"run-0/req-1", "run-2/req-1"} and page["meta"]["total_count"] == 2
        assert (await http.get("/approvals/count", params={"status": "approved"})).json() == {"count": 2}
        assert (await http.get("/approvals", params={"user_id": "nobody"})).json()["meta"]["total_count"] == 0
        record = page["data"][0]
        assert set(record["context"]) >= {"tool_name", "arguments", "tool_names", "source_name"}


async def test_an_older_trail_migrates_and_its_counts_stay_exact(database_url, monkeypatch):
    """Rows written before migration 009: Agno's keys from what is stored; tombstones keep the counts right."""
    old = PostgresDb(database_url, approvals_table=f"approvals_{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:8])
    old.migrate()
    await old.write_events([event(n) for n in range(4)] + [event(n, 2, "approved") for n in range(3)])
    await old.aclose()
    old.close()
    monkeypatch.undo()
    db = PostgresDb(database_url, approvals_table=old.approvals_table)
    try:
        record = db.get_approval("run-1/req-1")
        assert record["updated_at"] == record["resolved_at"] and record["source_type"] == "agent"
        assert db.delete_approval("run-1/req-1") and db.get_approvals()[1] == 3
        assert_counts_exact(db)
        assert db.verify_trail().problems == []
    finally:
        await db.aclose()
        db.close()


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
