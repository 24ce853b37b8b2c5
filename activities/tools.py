"""Tool execution: one activity per call the agent runs itself."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._agents import agent_named
from hitl._wire import RUN_TOOL, ToolRunRequest, ToolRunResult

# Keep what crosses back into history bounded: a tool may return megabytes.
MAX_OUTPUT_CHARS = 64_000


@activity.defn(name=RUN_TOOL)
async def run_tool(request: ToolRunRequest) -> ToolRunResult:
    """Run one tool call with validated arguments; errors are retried by Temporal's policy."""
    agent = agent_named(request.agent_name)
    tool = agent.tools.get(request.tool_name)
    if tool is None:
        raise ApplicationError(
            f"agent {request.agent_name!r} has no tool {request.tool_name!r}", type="ConfigurationError", non_retryable=True
        )
    output = await tool.invoke(request.arguments)
    if len(output) > MAX_OUTPUT_CHARS:
        output = output[:MAX_OUTPUT_CHARS] + f"\n[truncated {len(output) - MAX_OUTPUT_CHARS} characters]"
    return ToolRunResult(output=output)
