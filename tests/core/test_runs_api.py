"""cancel_run and list_runs, for agents and teams, from Python and from the `hitl runs` command."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from hitl import InvalidInputError, RunEndedError, RunNotFoundError, RunStatus, tool
from hitl.dev import stack
from tests.core.test_team import make_team  # noqa: F401 - fixture


@tool(requires_confirmation=True)
def refund(order: str) -> str:
    """Refund an order."""
    return f"refunded {order}"


def refunds(script):
    return script({"match": r"refund (\S+)", "turns": [{"tool_calls": [{"name": "refund", "arguments": {"order": "{1}"}}]},
                                                        {"content": "{results}"}]})


async def until(check, what: str, timeout: float = 20):
    for _ in range(int(timeout * 20)):
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(what)


async def test_cancel_run_ends_a_paused_run_and_cancels_its_pending_approvals(make_agent, script, running_worker, db):
    """cancel_run returns the run closed as cancelled; its pending approval's record becomes cancelled."""
    agent = make_agent(refunds(script), [refund], db=db)
    async with running_worker():
        paused = await agent.arun("refund o-1")
        cancelled = await agent.acancel_run(paused.run_id, reason="customer withdrew")
        assert cancelled.status == RunStatus.cancelled and cancelled.requirements[0].id == paused.requirements[0].id
        record = await until(lambda: _status_is(db, f"{paused.run_id}/{paused.requirements[0].id}", "cancelled"),
                             "the record was never cancelled")
        assert record["status"] == "cancelled"
        with pytest.raises(RunEndedError, match="cancelled|canceled"):
            await agent.acancel_run(paused.run_id)
        with pytest.raises(RunNotFoundError, match="run-nope"):
            await agent.acancel_run("run-nope")


async def _status_is(db, approval_id, status):
    record = await asyncio.to_thread(db.get_approval, approval_id)
    return record if record is not None and record["status"] == status else None


async def test_list_runs_finds_an_agents_runs_by_status_and_pending_tool(make_agent, script, running_worker):
    """list_runs: this agent's runs, filtered by hitl's status and by the tool they wait on."""
    agent = make_agent(refunds(script), [refund])
    other = make_agent(refunds(script), [refund])
    async with running_worker():
        a = await agent.arun("refund o-1")
        b = await agent.arun("refund o-2")
        await other.arun("refund o-3")
        b.requirements[0].confirm()
        await agent.acontinue_run(b.run_id, b.requirements)

        async def listed(**filters):
            found = await agent.alist_runs(**filters)
            return {r.run_id: r for r in found}

        paused = await until(lambda: _has(listed(status="paused"), {a.run_id}), "the paused run was never listed")
        assert set(paused) == {a.run_id} and paused[a.run_id].pending_tools == ["refund"]
        assert paused[a.run_id].agent_name == agent.name
        assert set(await until(lambda: _has(listed(status="completed"), {b.run_id}), "never completed")) == {b.run_id}
        assert set(await listed(tool="refund")) == {a.run_id}
        everything = await listed()
        assert set(everything) == {a.run_id, b.run_id}
        with pytest.raises(InvalidInputError, match="status"):
            await agent.alist_runs(status="sleeping")
        with pytest.raises(InvalidInputError, match="quotes"):
            await agent.alist_runs(tool='refund" OR HitlStatus != "x')


async def _has(coro, ids):
    found = await coro
    return found if ids <= set(found) else None


async def test_a_team_lists_and_cancels_its_runs(make_team, running_worker):  # noqa: F811
    """A Team has the same calls: its paused run is listed; cancelling it cancels the member too."""
    team, _, trader = make_team()
    async with running_worker():
        paused = await team.arun("Buy 3 shares of AAPL")
        assert paused.is_paused
        listed = await until(lambda: _has(_ids(team.alist_runs(status="paused")), {paused.run_id}), "never listed")
        assert paused.run_id in listed
        cancelled = await team.acancel_run(paused.run_id)
        assert cancelled.status == RunStatus.cancelled
        member = paused.active_requirements[0].member_run_id
        assert (await trader.aget_run(member)).status == RunStatus.cancelled


async def _ids(coro):
    return {r.run_id: r for r in await coro}


async def test_the_hitl_runs_command_lists_shows_and_cancels(make_agent, script, running_worker, temporal_server):
    """`hitl runs list --json`, `hitl runs show`, `hitl runs cancel` against the same runs."""
    agent = make_agent(refunds(script), [refund])
    hitl = stack.binary("hitl")
    address = ["--address", temporal_server["address"]]
    async with running_worker():
        paused = await agent.arun("refund o-9")

        async def listed():
            out = await asyncio.to_thread(subprocess.run, [hitl, "runs", "list", "--agent", agent.name, "--json", *address],
                                          capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            return {r["run_id"]: r for r in json.loads(out.stdout)} or None

        found = await until(listed, "never listed")
        assert found[paused.run_id]["status"] == "paused" and found[paused.run_id]["pending_tools"] == ["refund"]
        shown = await asyncio.to_thread(subprocess.run, [hitl, "runs", "show", paused.run_id, "--json", *address],
                                        capture_output=True, text=True, timeout=60)
        assert json.loads(shown.stdout)["requirements"][0]["tool_execution"]["tool_name"] == "refund"
        gone = await asyncio.to_thread(subprocess.run, [hitl, "runs", "cancel", paused.run_id, *address],
                                       capture_output=True, text=True, timeout=120)
        assert gone.returncode == 0 and gone.stdout.strip() == f"{paused.run_id} cancelled", gone.stderr
        missing = await asyncio.to_thread(subprocess.run, [hitl, "runs", "show", "run-nope", *address],
                                          capture_output=True, text=True, timeout=60)
        assert missing.returncode == 4 and "error: no run with id 'run-nope'" in missing.stderr
