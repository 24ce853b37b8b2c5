"""Agents keep their identity across deploys; a run no worker serves waits, visibly, and is never failed for it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from hitl import Agent, ConfigurationError, OpenAIChat, RunStatus, tool
from hitl._core import inline, runs
from hitl.decisions import Confirm
from hitl.errors import TemporalUnavailableError
from hitl.policy import set_group_resolver
from hitl.workflows import AgentRunWorkflow
from tests import redeploy_agents
from tests.core.test_durability import spawn_worker


@pytest.fixture
def redeploy_env(temporal_server, model_server, tmp_path, monkeypatch):
    import os

    model_server.add_script("redeploy-model", redeploy_agents.SCRIPT)
    log = tmp_path / "tools.log"
    log.touch()
    # Each test's own queue: one an earlier test's worker polled still counts as served for a while (runs._polled_lately).
    queue_prefix = f"redeploy-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "TEMPORAL_ADDRESS": temporal_server["address"], "OPENAI_BASE_URL": model_server.base_url,
           "HITL_TEST_LOG": str(log), "TEMPORAL_TASK_QUEUE": queue_prefix}
    # The client side derives the same queue. Through the environment: the agent under test is the module's own,
    # made with no task_queue= (what is tested is its default queue), and an Agent reads the prefix when used.
    monkeypatch.setenv("TEMPORAL_TASK_QUEUE", queue_prefix)
    yield env, log


def test_an_agent_without_a_name_is_named_where_it_is_defined():
    """No name=: the module and the variable, the same in the client and every worker; its own task queue."""
    assert redeploy_agents.agent.name == "tests.redeploy_agents.agent"
    assert redeploy_agents.agent.task_queue.endswith(".tests.redeploy_agents.agent")


def test_two_different_agents_under_one_name_are_refused():
    """A run is bound to a name: two definitions under it would make it mean what a worker imported last."""
    Agent(OpenAIChat("m"), name="one-name", instructions="first")
    Agent(OpenAIChat("m"), name="one-name", instructions="first")  # the same definition again: fine
    with pytest.raises(ConfigurationError, match="two different agents are named 'one-name'"):
        Agent(OpenAIChat("m"), name="one-name", instructions="second")


def test_an_agent_made_in_a_function_is_named_after_it():
    """Defined inside a function without name= and like no agent of its module: named after the function."""
    agent = Agent(OpenAIChat("m-made-in-a-function"))
    assert agent.name == f"{__name__}.test_an_agent_made_in_a_function_is_named_after_it.Agent"


async def test_a_paused_run_goes_on_after_a_redeploy_that_changed_instructions_and_removed_a_tool(
        redeploy_env, model_server, client):
    """Pause on v1, redeploy v2 (new instructions, a waiting tool removed), decide: the run completes on v2."""
    env, log = redeploy_env
    worker_log = log.parent / "worker.log"
    first = spawn_worker({**env, "HITL_REDEPLOY": "1"}, worker_log, "tests.redeploy_agents")
    agent = redeploy_agents.agent
    paused = await agent.arun("refund o-9")
    assert paused.is_paused and {r.tool_execution.tool_name for r in paused.requirements} == {"refund", "archive"}
    first.send_signal(signal.SIGTERM)
    first.wait()
    second = spawn_worker({**env, "HITL_REDEPLOY": "2"}, worker_log, "tests.redeploy_agents")
    try:
        for r in paused.active_requirements:
            r.confirm(resolved_by="ops")
        done = await asyncio.wait_for(agent.acontinue_run(paused.run_id, paused.requirements), 60)
    finally:
        second.kill()
        second.wait()
    assert done.status == RunStatus.completed
    assert "refunded o-9 (v2)" in done.content
    assert "no longer has tool 'archive'" in done.content and "it was not run" in done.content
    assert log.read_text().splitlines() == ["refund o-9 v2"]
    system = model_server.requests_for("redeploy-model")[-1]["messages"][0]
    assert system["role"] == "system" and "Version 2" in system["content"]


async def test_a_run_no_worker_serves_waits_visibly_and_goes_on_when_one_comes(redeploy_env):
    """Started with no worker for its agent: run() returns saying why it waits, so does get_run; a worker then takes it."""
    env, log = redeploy_env
    agent = redeploy_agents.agent
    waiting = await asyncio.wait_for(agent.arun("refund o-9"), 30)
    assert waiting.status == RunStatus.running and waiting.waiting_for_worker
    assert "no worker polls task queue" in waiting.waiting_for_worker and agent.name in waiting.waiting_for_worker
    again = await agent.aget_run(waiting.run_id)
    assert again.waiting_for_worker == waiting.waiting_for_worker
    listed = await agent.alist_runs(status="running")
    assert waiting.run_id in [r.run_id for r in listed]
    worker = spawn_worker({**env, "HITL_REDEPLOY": "1"}, log.parent / "worker.log", "tests.redeploy_agents")
    try:
        for _ in range(300):
            paused = await agent.aget_run(waiting.run_id)
            if paused.is_paused:
                break
            await asyncio.sleep(0.1)
        assert paused.is_paused and paused.waiting_for_worker is None and len(paused.requirements) == 2
    finally:
        worker.kill()
        worker.wait()


async def test_a_worker_that_comes_while_the_caller_waits_takes_the_run_it_started(client, running_worker,
                                                                                      model_server, task_queue):
    """No worker polls when run() starts the run; one comes a second later: run() returns the run's pause."""
    from hitl._core import runs

    model_server.add_script("late-worker", {"rules": [{"turns": [
        {"tool_calls": [{"name": "refund", "arguments": {"order_id": "o-1"}}]}, {"content": "done"}]}]})

    @tool(requires_confirmation=True)
    def refund(order_id: str) -> str:
        return f"refunded {order_id}"

    agent = Agent(OpenAIChat("late-worker", base_url=model_server.base_url), tools=[refund],
                  name=f"late-{uuid.uuid4().hex[:6]}", task_queue=task_queue)
    assert not await runs._polled_lately(client, task_queue)

    async def late_worker() -> None:
        await asyncio.sleep(1.0)
        async with running_worker():
            await asyncio.sleep(5)

    serving = asyncio.ensure_future(late_worker())
    try:
        run = await asyncio.wait_for(agent.arun("refund o-1"), 30)
        assert run.is_paused and run.waiting_for_worker is None, run
        assert [r.tool_execution.tool_name for r in run.active_requirements] == ["refund"]
    finally:
        await serving


async def test_a_worker_without_the_agent_on_a_shared_queue_fails_the_task_not_the_run(
        temporal_server, model_server, client, tmp_path):
    """A worker that does not serve the agent leaves the run alone: it stays running, and get_run says why."""
    import os

    queue = f"shared-{uuid.uuid4().hex[:6]}"
    agent = Agent(OpenAIChat("nobody-serves-me", base_url=model_server.base_url), name=f"unserved-{uuid.uuid4().hex[:6]}",
                  task_queue=queue)
    env = {**os.environ, "TEMPORAL_ADDRESS": temporal_server["address"], "HITL_TEST_LOG": str(tmp_path / "t.log"),
           "OPENAI_BASE_URL": model_server.base_url}
    code = ("import asyncio, os; from hitl.worker import create_worker; from hitl._core import client as _client; from hitl.settings import "
            "Settings\nasync def main():\n    c = await _client.connect(Settings.from_env())\n"
            f"    async with create_worker(c, {queue!r}):\n        print('worker ready', flush=True)\n"
            "        await asyncio.sleep(3600)\nasyncio.run(main())\n")
    with open(tmp_path / "w.log", "wb") as out:
        proc = subprocess.Popen([__import__("sys").executable, "-c", code], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):  # until the server has seen it poll: the run is then started with its first update
            if b"worker ready" in (tmp_path / "w.log").read_bytes() and await inline.polled(client, queue):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError((tmp_path / "w.log").read_text())
        run = await asyncio.wait_for(agent.arun("hello"), 60)
        assert run.status == RunStatus.running
        assert "is not defined in this worker" in (run.waiting_for_worker or ""), run
        description = await client.get_workflow_handle(run.run_id).describe()
        assert description.status.name == "RUNNING"
        # An update the server refuses while the task fails (a worker that came just after a start
        # found no poller): the first progress is the run as get_run reads it, and a decision says why.
        again = await asyncio.wait_for(runs._first_progress(client, run.run_id), 60)
        assert "is not defined in this worker" in (again.waiting_for_worker or ""), again
        with pytest.raises(TemporalUnavailableError, match="was not applied.*is not defined in this worker"):
            await runs.decide(client, run.run_id, Confirm(requirement_id="req-1"))
        await client.get_workflow_handle(run.run_id).terminate("test over")
    finally:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- replay after a redeploy
group_of: dict[str, list[str]] = {"carol": ["finance"]}


@tool(requires_user_input=True, user_input_fields=["amount"])
def wire(to: str, amount: int) -> str:
    """Wire money."""
    return f"wired {amount} to {to}"


async def test_a_history_decided_under_one_definition_replays_under_another(make_agent, script, running_worker, client):
    """Decisions checked against a tool's schema and the approvers' groups replay unchanged after both change."""
    from datetime import timedelta

    from hitl.approval import approval

    set_group_resolver(lambda user: group_of.get(user, []))

    @approval(approvers=["group:finance"], timeout=timedelta(hours=1))
    @tool(requires_confirmation=True)
    def pay(to: str) -> str:
        """Pay."""
        return f"paid {to}"

    model = script({"turns": [{"tool_calls": [{"name": "wire", "arguments": {"to": "acme"}},
                                              {"name": "pay", "arguments": {"to": "bob"}}]}, {"content": "{results}"}]})
    agent = make_agent(model, [wire, pay])
    try:
        async with running_worker():
            paused = await agent.arun("wire and pay")
            handle = client.get_workflow_handle(paused.run_id)
            wire_req, pay_req = paused.requirements
            await handle.signal("provide_input", {"requirement_id": wire_req.id, "value": "12"})  # "12" -> 12 by the schema
            await handle.signal("confirm", {"requirement_id": pay_req.id, "resolved_by": "mallory"})  # not allowed
            await handle.signal("confirm", {"requirement_id": pay_req.id, "resolved_by": "carol"})
            await asyncio.wait_for(handle.result(), 30)
            history = await handle.fetch_history()
        # The redeploy: wire's amount is text now, and carol has left finance while mallory joined it.
        del agent.tools["wire"]
        group_of.clear()
        group_of["mallory"] = ["finance"]
        result = await Replayer(workflows=[AgentRunWorkflow], data_converter=pydantic_data_converter).replay_workflow(
            WorkflowHistory.from_json(paused.run_id, history.to_json_dict()), raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure
    finally:
        set_group_resolver(None)
