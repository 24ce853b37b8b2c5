"""Runs survive what production throws at them: dead workers, a restarted server, other processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hitl import RunStatus
from hitl.dev import stack
from hitl.run import RunOutput
from tests import crash_agents
from tests.conftest import ROOT


@pytest.fixture
def env(temporal_server: dict[str, Any], model_server: Any, tool_log: Path) -> dict[str, str]:
    for name, script in crash_agents.SCRIPTS.items():
        model_server.add_script(name, script)
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_server["address"],
        "OPENAI_BASE_URL": model_server.base_url,
        "HITL_TEST_LOG": str(tool_log),
        "PYTHONPATH": str(ROOT),
    }


def spawn_worker(env: dict[str, str], log: Path, *modules: str) -> subprocess.Popen[bytes]:
    """A ``worker.py --agents MODULE ...`` subprocess (default tests.crash_agents), returned once it polls."""
    args = [a for m in (modules or ("tests.crash_agents",)) for a in ("--agents", m)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "worker.py", *args],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    for _ in range(600):
        if b"worker ready" in log.read_bytes():
            return proc
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError("worker did not start in 30 s")


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """Start worker subprocesses serving tests.crash_agents (or ``modules``); all are killed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*modules: str, **extra_env: str) -> subprocess.Popen[bytes]:
        proc = spawn_worker({**env, **extra_env}, tmp_path / f"worker-{len(started)}.log", *modules)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def _wait_for(path: Path, text: str, timeout: float = 20) -> None:
    for _ in range(int(timeout * 20)):
        if text in path.read_text():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path.read_text()!r}")


async def _kill_mid_tool(workers, agent, message: str, log: Path, marker: str, **new_worker_env: str):
    """Start a run, confirm its tool, SIGKILL the worker once the tool has started, start another.

    Returns the first response and the pending continue_run.
    """
    first = workers()
    response = await agent.arun(message)
    response.active_requirements[0].confirm()
    pending = asyncio.ensure_future(agent.acontinue_run(response.run_id, response.requirements))
    await _wait_for(log, marker)
    first.send_signal(signal.SIGKILL)
    first.wait()
    workers(**new_worker_env)
    return response, pending


async def test_worker_killed_while_paused_then_a_new_worker_finishes(workers, tool_log):
    """SIGKILL the only worker during a pause; a new worker takes the decision and completes the run."""
    first = workers()
    response = await crash_agents.ship_agent.arun("ship it")
    assert response.is_paused
    first.send_signal(signal.SIGKILL)
    first.wait()
    workers()
    response.active_requirements[0].confirm()
    done = await crash_agents.ship_agent.acontinue_run(response.run_id, response.requirements)
    assert done.status == RunStatus.completed and done.content == "shipped o-1"
    assert tool_log.read_text().splitlines() == ["ship o-1"]


async def test_worker_killed_while_an_idempotent_tool_runs_is_retried_on_a_new_worker(workers, tool_log):
    """SIGKILL mid-tool: the run goes on on a new worker, which runs the idempotent tool again."""
    response, pending = await _kill_mid_tool(workers, crash_agents.slow_agent, "write", tool_log, "slow_write start k")
    try:
        done = await asyncio.wait_for(pending, 60)
    except Exception:  # the update died with its worker before it was recorded: the decision was not lost
        done = await crash_agents.slow_agent.aget_run(response.run_id)
    for _ in range(200):
        if done.status == RunStatus.completed:
            break
        await asyncio.sleep(0.1)
        done = await crash_agents.slow_agent.aget_run(response.run_id)
    assert done.status == RunStatus.completed and done.content == "wrote k"
    assert tool_log.read_text().count("slow_write end k") == 1


async def test_worker_killed_while_a_non_idempotent_tool_runs_pauses_instead_of_retrying(workers, tool_log):
    """A tool marked idempotent=False that lost its worker is not re-run: a person is asked."""
    _, pending = await _kill_mid_tool(workers, crash_agents.charge_agent, "charge 42", tool_log, "charge start 42")
    again = await asyncio.wait_for(pending, 60)
    assert again.is_paused and again.pauses == 2
    [req] = again.active_requirements
    assert req.needs_confirmation and req.uncertain_outcome and "uncertain" in (req.note or "")
    req.reject(reason="checked the ledger: it went through")
    done = await crash_agents.charge_agent.acontinue_run(again.run_id, again.requirements)
    assert done.status == RunStatus.completed
    assert "outcome is unknown" in done.content and "went through" in done.content
    assert tool_log.read_text().splitlines() == ["charge start 42"]


async def test_uncertain_outcome_confirmed_runs_the_tool_again(workers, tool_log):
    """Confirming an uncertain outcome is a person's choice to run the tool once more."""
    _, pending = await _kill_mid_tool(
        workers, crash_agents.charge_agent, "charge 42", tool_log, "charge start 42", HITL_SLOW_SECONDS="0"
    )
    again = await asyncio.wait_for(pending, 60)
    again.active_requirements[0].confirm(resolved_by="ops")
    done = await crash_agents.charge_agent.acontinue_run(again.run_id, again.requirements)
    assert done.content == "charged 42"
    assert tool_log.read_text().splitlines() == ["charge start 42", "charge start 42", "charge end 42"]


async def test_resume_from_a_second_process_with_only_the_run_id(workers, env, tool_log):
    """Another process, knowing only the run id, loads the run and decides it."""
    workers()
    response = await crash_agents.ship_agent.arun("ship it")
    code = (
        "import sys\n"
        "from tests.crash_agents import ship_agent\n"
        "run = ship_agent.get_run(sys.argv[1])\n"
        "print('loaded', run.status, run.active_requirements[0].tool_execution.tool_name)\n"
        "run.active_requirements[0].confirm(resolved_by='second-process')\n"
        "print('final', ship_agent.continue_run(run.run_id, run.requirements).content)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, response.run_id], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "loaded paused ship" in out.stdout and "final shipped o-1" in out.stdout
    final = await crash_agents.ship_agent.aget_run(response.run_id)
    assert final.requirements[0].resolved_by == "second-process"


async def test_resume_with_the_temporal_cli(workers, temporal_server, client):
    """`temporal workflow signal --name confirm` resumes a run from a shell."""
    workers()
    response = await crash_agents.ship_agent.arun("ship it")
    rid = response.requirements[0].id
    out = subprocess.run(
        [stack.binary("temporal"), "workflow", "signal", "--address", temporal_server["address"],
         "--workflow-id", response.run_id, "--name", "confirm",
         "--input", f'{{"requirement_id": "{rid}", "resolved_by": "cli-user"}}'],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    result = RunOutput.model_validate(await client.get_workflow_handle(response.run_id).result())
    assert result.status == RunStatus.completed and result.content == "shipped o-1"
    assert result.requirements[0].resolved_by == "cli-user"


async def test_paused_run_survives_a_temporal_server_restart(tmp_path, model_server, script, make_agent):
    """The dev server persists to a file: stop it during a pause, start it again, finish the run."""
    from hitl import tool
    from hitl._core import client as _client
    from hitl.settings import Settings
    from hitl.worker import create_worker

    @tool(requires_confirmation=True)
    def archive(name: str) -> str:
        """Archive a file."""
        return f"archived {name}"

    db = tmp_path / "restart.db"
    proc, port = stack.start_temporal(db)
    address = f"127.0.0.1:{port}"
    model = script({"turns": [{"tool_calls": [{"name": "archive", "arguments": {"name": "a.txt"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [archive], temporal_address=address)
    try:
        client = await _client.connect(Settings.from_env(temporal_address=address))
        async with create_worker(client, agent.task_queue):
            response = await agent.arun("archive a.txt")
        assert response.is_paused
        stack.stop(proc)
        proc, _ = stack.start_temporal(db, port)
        async with create_worker(client, agent.task_queue):
            loaded = await agent.aget_run(response.run_id)
            assert loaded.is_paused
            loaded.active_requirements[0].confirm()
            done = await agent.acontinue_run(loaded.run_id, loaded.requirements)
        assert done.content == "archived a.txt"
    finally:
        stack.stop(proc)


async def test_worker_killed_between_escalation_steps_fires_the_next_step_once(workers, tool_log):
    """SIGKILL after the reminder: a new worker fires the escalation and the expiry, each once."""
    first = workers()
    response = await crash_agents.escalate_agent.arun("wire 9")
    assert response.is_paused
    await _wait_for(tool_log, "notified reminder level 1")
    first.send_signal(signal.SIGKILL)
    first.wait()
    workers()
    await _wait_for(tool_log, "notified expired", timeout=40)
    for _ in range(100):
        done = await crash_agents.escalate_agent.aget_run(response.run_id)
        if done.status == RunStatus.completed:
            break
        await asyncio.sleep(0.1)
    lines = tool_log.read_text().splitlines()
    assert lines == ["notified requested level 0", "notified reminder level 1", "notified escalated level 2",
                     "notified expired level 2"]
    assert done.requirements[0].approvers == ["alice", "bob"] and done.requirements[0].resolution == "expired"


async def test_worker_killed_while_a_team_member_is_paused(workers, tool_log):
    """`worker.py --agents` serves Teams; SIGKILL it while a member waits, and a new worker finishes the team run."""
    first = workers()
    response = await crash_agents.shipping_team.arun("ship the order")
    assert response.is_paused
    [req] = response.active_requirements
    assert req.member_agent_name == "crash-shipper"
    first.send_signal(signal.SIGKILL)
    first.wait()
    workers()
    req.confirm(resolved_by="ops")
    done = await crash_agents.shipping_team.acontinue_run(response.run_id, response.requirements)
    assert done.status == RunStatus.completed and done.content == "Team: Shipper: shipped o-7"
    assert tool_log.read_text().splitlines() == ["ship o-7"]
