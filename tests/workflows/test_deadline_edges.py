"""Deadlines set by change_approval: whatever the extension, the run expires the approval and goes on (never wedged)."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest

from hitl import InvalidDecisionError, RunStatus, tool


@tool(external_execution=True)
def deploy(service: str) -> str:
    """Deploy (done elsewhere)."""
    raise AssertionError("runs elsewhere")


async def settles(agent, client, run_id: str) -> RunStatus:
    for _ in range(100):
        run = await agent.aget_run(run_id)
        if run.status.is_final:
            return run.status
        await asyncio.sleep(0.05)
    described = await client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=run_id)))
    raise AssertionError(f"run {run_id} never went on: {run.status}, workflow task {described.pending_workflow_task}")


@pytest.mark.parametrize("extend", [5e-324, 1e-9, 5e-7, 0.05])
async def test_an_approval_without_a_timeout_given_a_deadline_expires_and_the_run_goes_on(
        make_agent, script, running_worker, client, extend):
    """A deadline from change_approval on an approval that had none: at it, the approval expires (the model is told)
    and the run completes; before, formatting its missing timeout failed every workflow task, and an extension
    shorter than a microsecond made the wait spin until the deadlock detector failed the task."""
    agent = make_agent(script({"turns": [{"tool_calls": [{"name": "deploy", "arguments": {"service": "api"}}]},
                                         {"content": "done: {results}"}]}), [deploy])
    async with running_worker():
        run = await agent.arun("deploy")
        handle = client.get_workflow_handle(run.run_id)
        changed = await handle.execute_update("change_approval", {"requirement_id": run.requirements[0].id,
                                                                  "extend_by_seconds": extend, "changed_by": "ops"})
        assert changed["status"] == "paused"
        assert await settles(agent, client, run.run_id) == RunStatus.completed
        done = await agent.aget_run(run.run_id)
        assert done.requirements[0].resolution == "expired" and "expired" in (done.content or "")


async def test_the_python_api_refuses_an_extension_that_rounds_to_nothing(make_agent, script, running_worker):
    """agent.change_approval(extend_by=timedelta(0)) is an InvalidDecisionError naming the field, not pydantic's error."""
    from datetime import timedelta

    agent = make_agent(script({"turns": [{"tool_calls": [{"name": "deploy", "arguments": {"service": "api"}}]},
                                         {"content": "{results}"}]}), [deploy])
    async with running_worker():
        run = await agent.arun("deploy")
        with pytest.raises(InvalidDecisionError, match="extend_by_seconds"):
            await agent.achange_approval(run.run_id, run.requirements[0].id, extend_by=timedelta(0))
