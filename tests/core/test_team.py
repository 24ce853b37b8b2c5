"""Teams: the reference's team example against the real dev server, PostgreSQL and the scripted model.

The leader delegates to a Researcher (no approval) and a Trader (``execute_trade`` needs one);
each member run is a child workflow, and the person approving talks to the team run only.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from hitl import Agent, OpenAIChat, RunStatus, tool
from hitl.approval import approval
from hitl.decisions import Confirm
from hitl.errors import ConfigurationError, DecisionNotAllowedError, RequirementAlreadyResolvedError
from hitl.policy import SYSTEM_TIMEOUT, remind
from hitl.run import RunOutput
from hitl.team import Team
from hitl.worker import create_worker
from tests.workflows.test_policy import skipping  # noqa: F401 - fixture: the time-skipping server

TRADES: list[tuple[str, int]] = []
SEARCHES: list[str] = []


@tool
def search_market_data(symbol: str) -> str:
    """Look up market data for a stock."""
    SEARCHES.append(symbol)
    return f"{symbol} trades at 190, analysts say buy"


@tool(requires_confirmation=True)
def search_paid_data(symbol: str) -> str:
    """Look up market data from a paid source (someone must approve the cost)."""
    SEARCHES.append(symbol)
    return f"{symbol} trades at 190, analysts say buy"


@approval
@tool(requires_confirmation=True)
def execute_trade(symbol: str, quantity: int) -> str:
    """Execute a stock trade."""
    TRADES.append((symbol, quantity))
    return f"bought {quantity} {symbol}"


LEADER = [
    {"match": "Buy (\\d+) shares of (\\w+)",
     "turns": [{"tool_calls": [{"name": "delegate_task_to_member",
                                "arguments": {"member_id": "Researcher", "task": "Research {2}"}},
                               {"name": "delegate_task_to_member",
                                "arguments": {"member_id": "Trader", "task": "Buy {1} {2}"}}]},
               {"content": "Team report: {results}"}]},
]
MEMBERS = [
    {"match": "^Research (\\w+)", "turns": [{"tool_calls": [{"name": "search_market_data", "arguments": {"symbol": "{1}"}}]},
                                            {"content": "Research: {results}"}]},
    {"match": "^Paid research (\\w+)", "turns": [{"tool_calls": [{"name": "search_paid_data",
                                                                  "arguments": {"symbol": "{1}"}}]},
                                                 {"content": "Research: {results}"}]},
    {"match": "^Buy (\\d+) (\\w+)", "turns": [{"tool_calls": [{"name": "execute_trade",
                                                               "arguments": {"symbol": "{2}", "quantity": "{num:1}"}}]},
                                              {"content": "Trader: {results}"}]},
]


@pytest.fixture
def make_team(model_server, script, task_queue, temporal_server):
    def make(*, db=None, trader_tools=None, research_tools=None, members=None, **kwargs):
        base = model_server.base_url
        members_model = script(*(members or MEMBERS))
        suffix = uuid.uuid4().hex[:6]
        research_agent = Agent(
            OpenAIChat(members_model, base_url=base), name=f"Researcher-{suffix}", role="Research stocks",
            tools=research_tools or [search_market_data], task_queue=task_queue)
        trader_agent = Agent(
            OpenAIChat(members_model, base_url=base), name=f"Trader-{suffix}", role="Execute trades",
            tools=trader_tools or [execute_trade], task_queue=task_queue)
        leader = copy.deepcopy(kwargs.pop("leader", LEADER))
        for rule in leader:
            for turn in rule["turns"]:
                for call in turn.get("tool_calls", []):
                    call["arguments"] = {**call["arguments"],
                                         "member_id": f"{call['arguments']['member_id']}-{suffix}"}
        team = Team(agents=[research_agent, trader_agent], model=OpenAIChat(script(*leader), base_url=base),
                    db=db, task_queue=task_queue, name=f"team-{suffix}", **kwargs)
        return team, research_agent, trader_agent

    return make


async def test_team_pauses_for_the_traders_approval_and_finishes(make_team, running_worker, db):
    """The reference's team flow: the Trader's execute_trade pauses the team; approving it on the team runs it."""
    team, researcher, trader = make_team(db=db)
    TRADES.clear()
    async with running_worker():
        response = await team.arun("Buy 100 shares of AAPL")
        assert response.is_paused and response.status == RunStatus.paused
        [req] = response.active_requirements
        assert req.needs_confirmation and req.tool_execution.tool_name == "execute_trade"
        assert req.tool_execution.arguments == {"symbol": "AAPL", "quantity": 100}
        assert req.member_agent_name == trader.name and req.member_run_id.startswith(response.run_id + ".")
        assert req.id.startswith(f"{req.member_run_id}/req-1-")
        assert TRADES == []
        req.confirm(resolved_by="alice")
        done = await team.acontinue_run(response.run_id, response.requirements)
    assert done.status == RunStatus.completed, done
    assert TRADES == [("AAPL", 100)]
    assert "Research: AAPL trades at 190" in done.content and "Trader: bought 100 AAPL" in done.content
    # The team's answer still shows the member's decided requirement, as an agent's shows its own.
    [shown] = done.requirements
    assert shown.id == req.id and shown.resolution == "confirmed" and shown.resolved_by == "alice"
    # Audit: the member's approval, keyed by the member run, carries the team run id.
    records, total = db.get_approvals(team_run_id=response.run_id)
    assert total == 1
    [record] = records
    assert record["run_id"] == req.member_run_id and record["team_run_id"] == response.run_id
    assert record["agent_name"] == trader.name and record["status"] == "approved" and record["resolved_by"] == "alice"
    assert record["id"] == req.id


async def test_rejection_reason_reaches_the_member_and_the_leaders_answer(make_team, running_worker, db):
    """The reason reaches the member and the leader's answer; the member's record says rejected, once mirrored."""
    team, _, trader = make_team(db=db)
    TRADES.clear()
    async with running_worker():
        response = await team.arun("Buy 5 shares of TSLA")
        assert response.is_paused, response
        for r in response.active_requirements:
            r.reject(reason="too volatile this week", resolved_by="bob")
        done = await team.acontinue_run(response)
        # The member's mirror runs beside it: wait until it has written the decision (never a sleep).
        for _ in range(400):
            records = (await asyncio.to_thread(db.get_approvals, team_run_id=response.run_id))[0]
            if records and records[0]["status"] != "pending":
                break
            await asyncio.sleep(0.05)
    assert TRADES == []
    assert "rejected by bob. Reason: too volatile this week" in done.content
    [record] = records
    assert record["status"] == "rejected" and record["resolution"]["reason"] == "too volatile this week"


async def test_a_signal_to_the_team_with_a_members_requirement_id_is_routed(make_team, running_worker, client):
    """Signals sent to the team run reach the member: by the team's id, or by the member's own."""
    team, _, _ = make_team()
    TRADES.clear()
    async with running_worker():
        response = await team.arun("Buy 7 shares of MSFT")
        [req] = response.active_requirements
        bare = req.id.rsplit("/", 1)[1]
        await client.get_workflow_handle(response.run_id).signal("confirm", Confirm(requirement_id=bare))
        result = await client.get_workflow_handle(response.run_id).result()
    assert TRADES == [("MSFT", 7)] and "bought 7 MSFT" in result["content"]


def test_team_needs_members_with_distinct_names():
    with pytest.raises(ConfigurationError, match="at least one member"):
        Team(agents=[])
    a = Agent(name="same")
    with pytest.raises(ConfigurationError, match="two members are named"):
        Team(members=[a, a])
    with pytest.raises(ConfigurationError, match="not both"):
        Team(agents=[a], members=[a])
    with pytest.raises(ConfigurationError, match="teams of teams are not supported"):
        Team(agents=[Team(agents=[a], name="inner")], name="outer")
    with pytest.raises(ConfigurationError, match="must be Agents"):
        Team(agents=["Researcher"])


async def test_members_without_a_human_step_keep_working_while_another_is_paused(make_team, running_worker):
    """The leader delegates to both at once: the Researcher finishes while the Trader waits."""
    team, researcher, _ = make_team()
    SEARCHES.clear()
    async with running_worker():
        response = await team.arun("Buy 3 shares of NVDA")
        assert response.is_paused
        for _ in range(100):
            if SEARCHES:
                break
            await asyncio.sleep(0.05)
        assert SEARCHES == ["NVDA"]
        still = await team.aget_run(response.run_id)
        assert still.is_paused and [r.member_agent_name for r in still.active_requirements] != [researcher.name]


async def test_two_members_paused_at_once_are_decided_in_one_continue_run(make_team, running_worker):
    leader = [{"match": "Buy (\\d+) shares of (\\w+)",
               "turns": [{"tool_calls": [
                   {"name": "delegate_task_to_member", "arguments": {"member_id": "Researcher", "task": "Paid research {2}"}},
                   {"name": "delegate_task_to_member", "arguments": {"member_id": "Trader", "task": "Buy {1} {2}"}}]},
                   {"content": "Team report: {results}"}]}]
    team, researcher, trader = make_team(research_tools=[search_paid_data], leader=leader)
    SEARCHES.clear()
    TRADES.clear()
    async with running_worker():
        response = await team.arun("Buy 2 shares of AMD")
        for _ in range(100):
            if len(response.active_requirements) == 2:
                break
            await asyncio.sleep(0.05)
            response = await team.aget_run(response.run_id)
        by_member = {r.member_agent_name: r for r in response.active_requirements}
        assert set(by_member) == {researcher.name, trader.name}
        assert SEARCHES == [] and TRADES == []
        by_member[researcher.name].confirm()
        by_member[trader.name].reject(reason="not today")
        done = await team.acontinue_run(response)
    assert done.status == RunStatus.completed
    assert SEARCHES == ["AMD"] and TRADES == []
    assert "Research: AMD trades at 190" in done.content and "Reason: not today" in done.content


async def test_cancelling_the_team_run_cancels_its_members(make_team, running_worker, client, db):
    team, _, _ = make_team(db=db)
    async with running_worker():
        response = await team.arun("Buy 9 shares of IBM")
        [req] = response.active_requirements
        await client.get_workflow_handle(response.run_id).cancel()
        with pytest.raises(WorkflowFailureError):
            await client.get_workflow_handle(response.run_id).result()
        member = await client.get_workflow_handle(req.member_run_id).describe()
        assert member.status == WorkflowExecutionStatus.CANCELED
        cancelled = await team.aget_run(response.run_id)
    assert cancelled.status == RunStatus.cancelled
    for _ in range(100):
        records, _ = db.get_approvals(team_run_id=response.run_id)
        if records and records[0]["status"] == "cancelled":
            break
        await asyncio.sleep(0.05)
    assert [r["status"] for r in records] == ["cancelled"]


class Notified(list):
    async def append_async(self, notification) -> None:
        self.append(notification)


@approval(timeout=timedelta(hours=1), escalation=[remind(after=timedelta(minutes=30))])
@tool(requires_confirmation=True)
def execute_block_trade(symbol: str, quantity: int) -> str:
    """Execute a block trade (expires after an hour)."""
    TRADES.append((symbol, quantity))
    return f"bought {quantity} {symbol}"


async def test_a_members_escalation_runs_inside_the_member_and_its_expiry_reaches_the_leader(
        skipping, model_server, script):  # noqa: F811
    """Time-skipping server: the member's reminder and deadline act as on an Agent; the team goes on."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    notified = Notified()
    trader = Agent(OpenAIChat(script({"match": "^Buy (\\d+) (\\w+)", "turns": [
        {"tool_calls": [{"name": "execute_block_trade", "arguments": {"symbol": "{2}", "quantity": "{num:1}"}}]},
        {"content": "Trader: {results}"}]}), base_url=model_server.base_url),
        name=f"BlockTrader-{queue}", tools=[execute_block_trade], task_queue=queue, notifiers=[notified.append_async])
    leader = script({"turns": [
        {"tool_calls": [{"name": "delegate_task_to_member", "arguments": {"member_id": trader.name, "task": "Buy 50 GE"}}]},
        {"content": "Team report: {results}"}]})
    team = Team(agents=[trader], model=OpenAIChat(leader, base_url=model_server.base_url), name=f"team-{queue}",
                task_queue=queue, client=skipping.client)
    TRADES.clear()
    async with create_worker(skipping.client, queue):
        response = await team.arun("Buy 50 shares of GE")
        [req] = response.active_requirements
        assert req.deadline == pytest.approx(req.created_at + 3600, abs=1)
        await skipping.sleep(timedelta(minutes=31))
        reminded = await team.aget_run(response.run_id)
        assert reminded.is_paused and reminded.active_requirements[0].escalation_level == 1
        await skipping.sleep(timedelta(minutes=30))
        result = RunOutput.model_validate(await skipping.client.get_workflow_handle(response.run_id).result())
        member = RunOutput.model_validate(await skipping.client.get_workflow_handle(req.member_run_id).result())
    assert TRADES == []
    assert result.status == RunStatus.completed
    assert "Trader: The call to execute_block_trade was not run: the request expired" in result.content
    [expired] = member.requirements
    assert expired.resolution == "expired" and expired.resolved_by == SYSTEM_TIMEOUT and expired.escalation_level == 1
    # The member's own notifiers were told, by the member's run.
    assert [(n.kind, n.run_id) for n in notified] == [(k, req.member_run_id) for k in ("requested", "reminder", "expired")]


@approval(approvers=["alice"])
@tool(requires_confirmation=True)
def execute_guarded_trade(symbol: str, quantity: int) -> str:
    """Execute a trade only alice may approve."""
    TRADES.append((symbol, quantity))
    return f"bought {quantity} {symbol}"


async def test_a_members_approvers_hold_when_deciding_on_the_team(make_team, running_worker, db):
    """Decided on the team by someone who is no approver: refused, recorded by the member, nothing runs."""
    members = [{"match": "^Research (\\w+)", "turns": [{"content": "Research: fine"}]},
               {"match": "^Buy (\\d+) (\\w+)", "turns": [
                   {"tool_calls": [{"name": "execute_guarded_trade", "arguments": {"symbol": "{2}", "quantity": "{num:1}"}}]},
                   {"content": "Trader: {results}"}]}]
    team, _, _ = make_team(db=db, trader_tools=[execute_guarded_trade], members=members)
    TRADES.clear()
    async with running_worker():
        response = await team.arun("Buy 1 shares of ORCL")
        [req] = response.active_requirements
        assert req.approvers == ["alice"]
        req.confirm(resolved_by="mallory")
        with pytest.raises(DecisionNotAllowedError, match="mallory"):
            await team.acontinue_run(response)
        for _ in range(100):
            events = [e["kind"] for e in db.get_approval_events(req.id)]
            if "refused" in events:
                break
            await asyncio.sleep(0.05)
        assert events == ["requested", "refused"] and TRADES == []
        again = await team.aget_run(response.run_id)
        [req] = again.active_requirements
        req.confirm(resolved_by="alice")
        done = await team.acontinue_run(again)
    assert TRADES == [("ORCL", 1)] and "Trader: bought 1 ORCL" in done.content


async def test_reassigning_a_members_approval_on_the_team_reaches_the_member(make_team, running_worker):
    members = [{"match": "^Research (\\w+)", "turns": [{"content": "Research: fine"}]},
               {"match": "^Buy (\\d+) (\\w+)", "turns": [
                   {"tool_calls": [{"name": "execute_guarded_trade", "arguments": {"symbol": "{2}", "quantity": "{num:1}"}}]},
                   {"content": "Trader: {results}"}]}]
    team, _, _ = make_team(trader_tools=[execute_guarded_trade], members=members)
    TRADES.clear()
    async with running_worker():
        response = await team.arun("Buy 2 shares of SAP")
        [req] = response.active_requirements
        await team.achange_approval(response.run_id, req.id, approvers=["dana"], changed_by="ops")
        for _ in range(100):
            now = await team.aget_run(response.run_id)
            if now.active_requirements and now.active_requirements[0].approvers == ["dana"]:
                break
            await asyncio.sleep(0.05)
        [req] = now.active_requirements
        assert req.approvers == ["dana"]
        req.confirm(resolved_by="dana")
        done = await team.acontinue_run(now)
    assert TRADES == [("SAP", 2)] and "Trader: bought 2 SAP" in done.content


async def test_a_member_paused_in_two_turns_shows_each_pause_in_turn(make_team, running_worker):
    leader = [{"match": "two trades", "turns": [
        {"tool_calls": [{"name": "delegate_task_to_member", "arguments": {"member_id": "Trader", "task": "Buy 1 IBM"}}]},
        {"tool_calls": [{"name": "delegate_task_to_member", "arguments": {"member_id": "Trader", "task": "Buy 2 HPQ"}}]},
        {"content": "Team report: {results}"}]}]
    team, _, _ = make_team(leader=leader)
    TRADES.clear()
    async with running_worker():
        first = await team.arun("two trades")
        [a] = first.active_requirements
        a.confirm()
        second = await team.acontinue_run(first)
        assert second.is_paused and [r.tool_execution.arguments for r in second.requirements] == [
            {"symbol": "HPQ", "quantity": 2}]
        [b] = second.active_requirements
        assert b.member_run_id != a.member_run_id
        with pytest.raises(RequirementAlreadyResolvedError):
            await team.acontinue_run(second.run_id, [a])
        b.confirm()
        done = await team.acontinue_run(second)
    assert TRADES == [("IBM", 1), ("HPQ", 2)] and done.content == "Team report: Trader: bought 2 HPQ"
    assert [r.id for r in done.requirements] == [b.id]


async def test_a_paused_team_and_its_member_are_listed_by_search_attributes(make_team, running_worker, temporal_server):
    from tests.observability.test_visibility import eventually

    team, _, trader = make_team()
    address = temporal_server["address"]
    async with running_worker():
        response = await team.arun("Buy 4 shares of INTC")
        [req] = response.active_requirements
        await eventually(address, f'HitlStatus = "paused" AND HitlPendingTools = "execute_trade" AND HitlAgent = "{team.name}"',
                         response.run_id)
        await eventually(address, f'HitlTeamRunId = "{response.run_id}" AND HitlAgent = "{trader.name}"', req.member_run_id)
        req.confirm()
        await team.acontinue_run(response)
    await eventually(address, 'HitlStatus = "completed"', response.run_id)


async def test_a_failing_member_is_reported_to_the_leader_and_the_team_finishes(make_team, running_worker):
    members = [{"match": "^Research (\\w+)", "turns": [{"content": "x", "fail": {"status": 400, "times": 100,
                                                                                "message": "bad request"}}]},
               *MEMBERS[1:]]
    team, researcher, _ = make_team(members=members)
    async with running_worker():
        response = await team.arun("Buy 6 shares of AMZN")
        for r in response.active_requirements:
            r.reject(reason="not now")
        done = await team.acontinue_run(response)
    assert done.status == RunStatus.completed
    assert f"Member {researcher.name!r} did not finish (error)" in done.content and "bad request" in done.content


async def test_update_approval_on_a_members_audit_record_resumes_the_team(make_team, running_worker, db, client):
    """The compliance API decides the member's approval by its audit id; the team sees it and finishes."""
    team, _, _ = make_team(db=db)
    TRADES.clear()
    async with running_worker():
        response = await team.arun("Buy 8 shares of CSCO")
        [req] = response.active_requirements
        for _ in range(100):
            if db.get_approval(req.id) is not None:
                break
            await asyncio.sleep(0.05)
        record = await db.aupdate_approval(req.id, status="approved", resolved_by="compliance")
        assert record["status"] == "approved" and record["team_run_id"] == response.run_id
        result = await client.get_workflow_handle(response.run_id).result()
    assert TRADES == [("CSCO", 8)] and "Trader: bought 8 CSCO" in result["content"]
    [shown] = result["requirements"]
    assert shown["resolved_by"] == "compliance"


def test_a_delegation_names_a_known_member_and_a_bounded_task():
    """What the leader's model asks for is checked in the worker, and told back to it when wrong."""
    from hitl._wire import ToolCallPlan
    from hitl.activities.model import MAX_TASK_CHARS, _delegation

    member = Agent(name=f"m-{uuid.uuid4().hex[:6]}")
    team = Team(agents=[member], name=f"t-{uuid.uuid4().hex[:6]}")

    def plan(**arguments):
        return _delegation(team, ToolCallPlan(tool_call_id="c", tool_name="delegate_task_to_member", arguments=arguments))

    ok = plan(member_id=member.name, task="do it")
    assert ok.invalid is None and ok.member is not None and ok.member.agent_name == member.name
    assert "Unknown member 'nobody'" in plan(member_id="nobody", task="x").invalid
    assert f"at most {MAX_TASK_CHARS}" in plan(member_id=member.name, task="x" * (MAX_TASK_CHARS + 1)).invalid
    assert "non-empty" in plan(member_id=member.name, task="  ").invalid
