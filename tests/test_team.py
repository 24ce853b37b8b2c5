"""Teams: the reference's team example against the real dev server, PostgreSQL and the scripted model.

The leader delegates to a Researcher (no approval) and a Trader (``execute_trade`` needs one);
each member run is a child workflow, and the person approving talks to the team run only.
"""

from __future__ import annotations

import asyncio
import copy
import uuid

import pytest

from hitl import Agent, OpenAIChat, PostgresDb, RunStatus, tool
from hitl.approval import approval
from hitl.decisions import Confirm, Reject
from hitl.errors import ConfigurationError
from hitl.team import Team

TRADES: list[tuple[str, int]] = []


@tool
def search_market_data(symbol: str) -> str:
    """Look up market data for a stock."""
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
    {"match": "^Buy (\\d+) (\\w+)", "turns": [{"tool_calls": [{"name": "execute_trade",
                                                               "arguments": {"symbol": "{2}", "quantity": "{num:1}"}}]},
                                              {"content": "Trader: {results}"}]},
]


@pytest.fixture
def db(database_url):
    database = PostgresDb(database_url, approvals_table=f"approvals_{uuid.uuid4().hex[:8]}")
    yield database
    database.close()


@pytest.fixture
def make_team(model_server, script, task_queue, temporal_server):
    def make(*, db=None, trader_tools=None, **kwargs):
        base = model_server.base_url
        members_model = script(*MEMBERS)
        suffix = uuid.uuid4().hex[:6]
        research_agent = Agent(
            OpenAIChat(members_model, base_url=base), name=f"Researcher-{suffix}", role="Research stocks",
            tools=[search_market_data], task_queue=task_queue)
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
    # Audit: the member's approval, keyed by the member run, carries the team run id.
    records, total = db.get_approvals(team_run_id=response.run_id)
    assert total == 1
    [record] = records
    assert record["run_id"] == req.member_run_id and record["team_run_id"] == response.run_id
    assert record["agent_name"] == trader.name and record["status"] == "approved" and record["resolved_by"] == "alice"
    assert record["id"] == req.id


async def test_rejection_reason_reaches_the_member_and_the_leaders_answer(make_team, running_worker, db):
    team, _, trader = make_team(db=db)
    TRADES.clear()
    async with running_worker():
        response = await team.arun("Buy 5 shares of TSLA")
        assert response.is_paused, response
        for r in response.active_requirements:
            r.reject(reason="too volatile this week", resolved_by="bob")
        done = await team.acontinue_run(response)
    assert TRADES == []
    assert "rejected by bob. Reason: too volatile this week" in done.content
    [record] = db.get_approvals(team_run_id=response.run_id)[0]
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
