"""Paused runs are listable from Temporal by search attributes, with the README's CLI queries."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime, timedelta

from hitl import tool
from hitl.approval import approval
from hitl.decisions import Confirm
from hitl.dev import stack


@approval(timeout=timedelta(days=1))
@tool(requires_confirmation=True)
def wire_money(amount: int) -> str:
    """Wire money."""
    return f"wired {amount}"


@tool(requires_confirmation=True)
def restart_service(name: str) -> str:
    """Restart a service."""
    return f"restarted {name}"


def cli_list(address: str, query: str) -> set[str]:
    out = subprocess.run(
        [stack.binary("temporal"), "workflow", "list", "--address", address, "--query", query, "--output", "json"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout
    rows = json.loads(out) if out.strip().startswith("[") else [json.loads(line) for line in out.splitlines() if line]
    return {row["execution"]["workflowId"] for row in rows}


async def eventually(address: str, query: str, run_id: str, present: bool = True) -> None:
    """Visibility is eventually consistent: poll the list for a few seconds."""
    for _ in range(50):
        if (run_id in await asyncio.to_thread(cli_list, address, query)) == present:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{run_id} {'not ' if present else ''}listed by {query!r}")


async def test_paused_runs_are_listed_by_status_tool_and_deadline(make_agent, script, running_worker, temporal_server, client):
    address = temporal_server["address"]
    model = script({"turns": [{"tool_calls": [{"name": "wire_money", "arguments": {"amount": 5}},
                                               {"name": "restart_service", "arguments": {"name": "api"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [wire_money, restart_service])
    async with running_worker():
        paused = await agent.arun("wire and restart")
        run_id = paused.run_id
        soon = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        await eventually(address, 'HitlStatus = "paused"', run_id)
        await eventually(address, 'HitlPendingTools = "wire_money"', run_id)
        await eventually(address, 'HitlPendingTools = "restart_service"', run_id)
        await eventually(address, f'HitlStatus = "paused" AND HitlNextDeadline < "{soon}"', run_id)
        await eventually(address, f'HitlAgent = "{agent.name}"', run_id)

        # One decision by signal: the other tool still waits; the deadline was the decided one's.
        wire = next(r for r in paused.active_requirements if r.tool_execution.tool_name == "wire_money")
        await client.get_workflow_handle(run_id).signal("confirm", Confirm(requirement_id=wire.id))
        await eventually(address, 'HitlPendingTools = "wire_money"', run_id, present=False)
        await eventually(address, f'HitlNextDeadline < "{soon}"', run_id, present=False)
        await eventually(address, 'HitlStatus = "paused" AND HitlPendingTools = "restart_service"', run_id)
        restart = next(r for r in paused.active_requirements if r.tool_execution.tool_name == "restart_service")
        restart.confirm()
        done = await agent.acontinue_run(run_id, [restart])
    assert done.status.value == "completed"
    await eventually(address, 'HitlStatus = "completed"', run_id)
    await eventually(address, 'HitlStatus = "paused"', run_id, present=False)
    await eventually(address, 'HitlPendingTools = "restart_service"', run_id, present=False)


async def test_search_attributes_can_be_turned_off(monkeypatch, make_agent, script, running_worker, client):
    """HITL_SEARCH_ATTRIBUTES=0: nothing is registered or asked of the server, and runs set none."""
    from hitl.observability.visibility import register_search_attributes

    monkeypatch.setenv("HITL_SEARCH_ATTRIBUTES", "0")
    assert await register_search_attributes(object()) is False  # type: ignore[arg-type]  # never touched
    model = script({"turns": [{"tool_calls": [{"name": "restart_service", "arguments": {"name": "db"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [restart_service])
    async with running_worker():
        paused = await agent.arun("restart")
        history = await client.get_workflow_handle(paused.run_id).fetch_history()
        for r in paused.active_requirements:
            r.confirm()
        await agent.acontinue_run(paused)
    upserted = {key for e in history.events if e.HasField("upsert_workflow_search_attributes_event_attributes")
                for key in e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields}
    assert not {k for k in upserted if k.startswith("Hitl")}, upserted  # (the SDK's own TemporalChangeVersion may be)
