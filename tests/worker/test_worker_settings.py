"""A worker's own settings: how many runs it keeps, and whether its workflow code runs in Temporal's sandbox."""

from __future__ import annotations

import pytest
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from hitl import tool
from hitl.errors import ConfigurationError
from hitl.settings import Environment
from hitl.worker import cache_size, create_worker, workflow_runner


def env(**variables: str) -> Environment:
    """The variables, by name, as a worker reads them: settings built here, the process's environment untouched."""
    return Environment.model_validate(variables)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither cache variable set in this process (a count set by the caller's shell would hide a bad memory)."""
    for name in ("HITL_MAX_CACHED_WORKFLOWS", "HITL_WORKFLOW_CACHE_MIB"):
        monkeypatch.delenv(name, raising=False)


def test_the_cache_is_sized_by_memory() -> None:
    assert cache_size(env()) == 1000  # 100 MiB at 0.1 MiB a run
    assert cache_size(env(HITL_WORKFLOW_CACHE_MIB="64")) == 640
    assert cache_size(env(HITL_WORKFLOW_CACHE_MIB="64", HITL_MAX_CACHED_WORKFLOWS="300")) == 300  # a count wins over the memory
    # blank, as compose passes an unset variable
    assert cache_size(env(HITL_WORKFLOW_CACHE_MIB="64", HITL_MAX_CACHED_WORKFLOWS=" ")) == 640


# What these two check is the promise about the variables themselves (a bad value fails at start-up, naming
# the variable), so they set them in the process's environment, where a worker started with no settings reads them.
@pytest.mark.parametrize(("name", "value"), [("HITL_WORKFLOW_CACHE_MIB", "lots"), ("HITL_WORKFLOW_CACHE_MIB", "0"),
                                             ("HITL_MAX_CACHED_WORKFLOWS", "-5")])
def test_a_bad_cache_setting_is_named(clean_env: None, monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        cache_size()


def test_the_sandbox_is_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(workflow_runner(env()), UnsandboxedWorkflowRunner)
    assert isinstance(workflow_runner(env(HITL_WORKFLOW_SANDBOX="1")), SandboxedWorkflowRunner)
    monkeypatch.setenv("HITL_WORKFLOW_SANDBOX", "yes")
    with pytest.raises(ConfigurationError, match="HITL_WORKFLOW_SANDBOX='yes'"):
        workflow_runner()


@tool(requires_confirmation=True)
def refund(order_id: str) -> str:
    """Refund an order."""
    return f"refunded {order_id}"


async def test_runs_decide_and_complete_in_the_sandbox(client, make_agent, script) -> None:
    """Opting in to the sandbox still works end to end: the workflow code is sandbox-safe."""
    agent = make_agent(script({"turns": [{"tool_calls": [{"name": "refund", "arguments": {"order_id": "o-9"}}]},
                                         {"content": "done: {results}"}]}), [refund])
    worker = create_worker(client, agent.task_queue, env=env(HITL_WORKFLOW_SANDBOX="1"))
    assert isinstance(worker.config()["workflow_runner"], SandboxedWorkflowRunner)
    async with worker:
        paused = await agent.arun("refund o-9")
        paused.active_requirements[0].confirm(resolved_by="alice")
        done = await agent.acontinue_run(paused.run_id, paused.requirements)
    assert done.content == "done: refunded o-9"
