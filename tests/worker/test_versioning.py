"""Worker versioning on the real dev server: runs pinned to the version they started on, and paused
runs moved to the current version by `hitl runs upgrade`, decided and completed there."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid

from hitl import tool
from hitl.dev import stack
from hitl.worker import create_worker
from hitl.worker.versioning import Deployment
from tests.conftest import ROOT
from tests.store.test_audit import settled, sql

PAID: list[int] = []


@tool(requires_confirmation=True)
def pay(amount: int) -> str:
    """Pay."""
    PAID.append(amount)
    return f"paid {amount}"


async def set_current(address: str, deployment: Deployment) -> None:
    """`temporal worker deployment set-current-version`, once the version's workers have polled (they
    poll on this loop: the CLI runs in a thread)."""
    args = [stack.binary("temporal"), "worker", "deployment", "set-current-version", "--deployment-name",
            deployment.name, "--build-id", deployment.build_id, "--address", address, "--yes"]
    for _ in range(100):
        done = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, timeout=30)
        if done.returncode == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{deployment} never became current: {done.stderr}")


async def build_of(client, run_id: str) -> str:
    description = await client.get_workflow_handle(run_id).describe()
    return description.raw_description.workflow_execution_info.versioning_info.deployment_version.build_id


async def until_on(client, run_id: str, build: str) -> None:
    for _ in range(200):
        if await build_of(client, run_id) == build:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} is on {await build_of(client, run_id)}, not {build}")


async def test_paused_runs_move_to_the_new_version_and_complete_there(client, make_agent, script, task_queue, db, temporal_server):
    """Runs paused on v1; v2 deployed and made current; `hitl runs upgrade` moves them; v1 stopped; decided on v2, each tool once.
    A run not asked stays pinned to v1 and is decided there."""
    name = f"hitl-test-{uuid.uuid4().hex[:8]}"
    v1, v2 = Deployment(name, "v1"), Deployment(name, "v2")
    agent = make_agent(script({"turns": [{"tool_calls": [{"name": "pay", "arguments": {"amount": 5}}]},
                                         {"content": "done: {results}"}]}), [pay], db=db)
    PAID.clear()
    async with create_worker(client, task_queue, deployment=v1):
        await set_current(temporal_server["address"], v1)
        runs = [await agent.arun("pay") for _ in range(3)]
        stays = await agent.arun("pay")
        for run in (*runs, stays):
            assert run.is_paused and await build_of(client, run.run_id) == "v1"
        async with create_worker(client, task_queue, deployment=v2):
            await set_current(temporal_server["address"], v2)
            env = {**os.environ, "TEMPORAL_ADDRESS": temporal_server["address"]}
            out = await asyncio.to_thread(
                subprocess.run, [stack.binary("hitl"), "runs", "upgrade", "--temporal", *(r.run_id for r in runs), "--json"],
                capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
            assert out.returncode == 0 and json.loads(out.stdout) == [r.run_id for r in runs], out.stderr
            for run in runs:
                await until_on(client, run.run_id, "v2")
            assert await build_of(client, stays.run_id) == "v1"  # pinned: nobody asked it to move
            stays.requirements[0].confirm(resolved_by="ops")
            done = await agent.acontinue_run(stays.run_id, stays.requirements)
            assert done.status.value == "completed" and await build_of(client, stays.run_id) == "v1"
        async with create_worker(client, task_queue, deployment=v2):  # v1's workers are gone
            for run in runs:
                moved = await agent.aget_run(run.run_id)
                assert moved.is_paused and [r.id for r in moved.active_requirements] == [r.id for r in run.requirements]
                moved.requirements[0].confirm(resolved_by="ops")
                done = await agent.acontinue_run(run.run_id, moved.requirements)
                assert done.status.value == "completed" and done.content == "done: paid 5"
                assert await build_of(client, run.run_id) == "v2"
    assert PAID == [5, 5, 5, 5]
    for run in runs:
        rows = await settled(db, run.run_id, 1, "approved")
        assert len(rows) == 1
        kinds = [k for (k,) in sql(db, "SELECT kind FROM {t}_events WHERE approval_id = %s ORDER BY seq", rows[0][0])]
        assert kinds == ["requested", "confirmed"], kinds  # moving wrote nothing twice


def test_a_half_configured_deployment_is_refused(monkeypatch):
    """HITL_DEPLOYMENT_NAME without HITL_BUILD_ID (or the reverse) is a ConfigurationError saying to set both."""
    import pytest

    from hitl.errors import ConfigurationError

    monkeypatch.setenv("HITL_DEPLOYMENT_NAME", "hitl")
    monkeypatch.delenv("HITL_BUILD_ID", raising=False)
    with pytest.raises(ConfigurationError, match="both"):
        Deployment.from_env()
    with pytest.raises(ConfigurationError, match="no dots"):
        Deployment("hitl", "v1.2")


async def test_an_upgrade_never_waits_on_a_caller_waiting_for_the_next_pause(client, make_agent, script, running_worker):
    """A caller waits for the run's next pause; an upgrade request then a decision: the run completes (no deadlock)."""
    from temporalio.client import WorkflowUpdateStage

    agent = make_agent(script({"turns": [{"tool_calls": [{"name": "pay", "arguments": {"amount": 7}}]},
                                         {"content": "done: {results}"}]}), [pay])
    PAID.clear()
    async with running_worker():
        run = await agent.arun("pay")
        handle = client.get_workflow_handle(run.run_id)
        waiter = await handle.start_update("wait_for_progress", 1, wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        await handle.signal("upgrade")
        run.requirements[0].confirm(resolved_by="ops")
        done = await asyncio.wait_for(agent.acontinue_run(run.run_id, run.requirements), 60)
        assert done.status.value == "completed" and PAID == [7]
        await asyncio.wait_for(waiter.result(), 30)
