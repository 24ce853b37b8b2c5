"""A worker's own settings: how many runs it keeps, and whether its workflow code runs in Temporal's sandbox."""

from __future__ import annotations

import pytest
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from hitl import tool
from hitl.errors import ConfigurationError
from hitl.worker import cache_size, create_worker, workflow_runner


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HITL_MAX_CACHED_WORKFLOWS", "HITL_WORKFLOW_CACHE_MIB", "HITL_WORKFLOW_SANDBOX"):
        monkeypatch.delenv(name, raising=False)


def test_the_cache_is_sized_by_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache_size() == 1000  # 100 MiB at 0.1 MiB a run
    monkeypatch.setenv("HITL_WORKFLOW_CACHE_MIB", "64")
    assert cache_size() == 640
    monkeypatch.setenv("HITL_MAX_CACHED_WORKFLOWS", "300")  # a count wins over the memory
    assert cache_size() == 300
    monkeypatch.setenv("HITL_MAX_CACHED_WORKFLOWS", " ")  # blank, as compose passes an unset variable
    assert cache_size() == 640


@pytest.mark.parametrize(("name", "value"), [("HITL_WORKFLOW_CACHE_MIB", "lots"), ("HITL_WORKFLOW_CACHE_MIB", "0"),
                                             ("HITL_MAX_CACHED_WORKFLOWS", "-5")])
def test_a_bad_cache_setting_is_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        cache_size()


def test_the_sandbox_is_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(workflow_runner(), UnsandboxedWorkflowRunner)
    monkeypatch.setenv("HITL_WORKFLOW_SANDBOX", "1")
    assert isinstance(workflow_runner(), SandboxedWorkflowRunner)
    monkeypatch.setenv("HITL_WORKFLOW_SANDBOX", "yes")
    with pytest.raises(ConfigurationError, match="HITL_WORKFLOW_SANDBOX='yes'"):
        workflow_runner()


@tool(requires_confirmation=True)
def refund(order_id: str) -> str:
    """Refund an order."""
    return f"refunded {order_id}"


async def test_runs_decide_and_complete_in_the_sandbox(monkeypatch, client, make_agent, script) -> None:
    """Opting in to the sandbox still works end to end: the workflow code is sandbox-safe."""
    monkeypatch.setenv("HITL_WORKFLOW_SANDBOX", "1")
    agent = make_agent(script({"turns": [{"tool_calls": [{"name": "refund", "arguments": {"order_id": "o-9"}}]},
                                         {"content": "done: {results}"}]}), [refund])
    worker = create_worker(client, agent.task_queue)
    assert isinstance(worker.config()["workflow_runner"], SandboxedWorkflowRunner)
    async with worker:
        paused = await agent.arun("refund o-9")
        paused.active_requirements[0].confirm(resolved_by="alice")
        done = await agent.acontinue_run(paused.run_id, paused.requirements)
    assert done.content == "done: refunded o-9"
