"""Tool execution: one activity per call the agent runs itself."""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import activity
from temporalio.exceptions import ApplicationError

from hitl import limits, telemetry
from hitl._wire import RUN_TOOL, ToolRunRequest, ToolRunResult
from hitl.activities._agents import agent_named
from hitl.errors import InvalidInputError


@activity.defn(name=RUN_TOOL)
async def run_tool(request: ToolRunRequest) -> ToolRunResult:
    """Run one tool call with validated arguments; errors are retried by Temporal's policy."""
    agent = agent_named(request.agent_name)
    tool = agent.tools.get(request.tool_name)
    if tool is None:
        # A redeploy removed the tool while its call waited: a clear answer for the model, not a retry.
        raise ApplicationError(
            f"agent {request.agent_name!r} no longer has tool {request.tool_name!r} (run {request.run_id}, "
            f"call {request.tool_call_id}); it was not run", type="ConfigurationError", non_retryable=True)
    attributes = {"hitl.agent": request.agent_name, "hitl.tool": request.tool_name, "hitl.run_id": request.run_id,
                  "hitl.tool_call_id": request.tool_call_id}  # never the arguments
    async with _heartbeating():
        try:
            with telemetry.span("hitl.tool_call", attributes):
                output = await tool.invoke(request.arguments)
        except InvalidInputError as exc:
            raise ApplicationError(f"{exc} (run {request.run_id}, call {request.tool_call_id}); it was not run",
                                   type="InvalidToolArguments", non_retryable=True) from None
    return ToolRunResult(output=bounded(output))


def bounded(output: str) -> str:
    """A tool's output as history, the model and the audit trail can all hold it (``hitl.limits``)."""
    output = limits.storable(output)
    if len(output) > limits.MAX_TOOL_OUTPUT_CHARS:
        cut = len(output) - limits.MAX_TOOL_OUTPUT_CHARS
        output = output[: limits.MAX_TOOL_OUTPUT_CHARS] + f"\n[truncated {cut} characters]"
    return output


@contextlib.asynccontextmanager
async def _heartbeating():  # type: ignore[no-untyped-def]
    """Heartbeat while a remote tool runs, so a dead worker is noticed in seconds, not at the tool's timeout."""
    info = activity.info()
    if info.is_local or not info.heartbeat_timeout:
        yield
        return
    every = max(0.5, info.heartbeat_timeout.total_seconds() / 3)

    async def beat() -> None:
        while True:  # the first beat after `every`: a short tool costs no heartbeat at all
            await asyncio.sleep(every)
            activity.heartbeat()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
