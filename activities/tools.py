"""Tool execution: one activity per call the agent runs itself."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from hitl import limits
from hitl._core import context as _context
from hitl._core import registry, sessions
from hitl._wire import RUN_TOOL, TOOL_OUTCOME_UNKNOWN, ToolRunRequest, ToolRunResult, member_slug
from hitl.activities._agents import agent_named
from hitl.agent import Agent
from hitl.errors import InvalidInputError
from hitl.observability import telemetry
from hitl.run.base import RunContext
from hitl.team import Team
from hitl.tools.mcp import McpOutcomeUnknown, McpServerError


@activity.defn(name=RUN_TOOL)
async def run_tool(request: ToolRunRequest) -> ToolRunResult:
    """Run one tool call with validated arguments; errors are retried by Temporal's policy."""
    agent = agent_named(request.agent_name)
    if request.mcp_server is not None:
        return await _run_mcp_tool(agent, request)
    tool = agent.tools.get(request.tool_name)
    if tool is None:
        # A redeploy removed the tool while its call waited: a clear answer for the model, not a retry.
        raise ApplicationError(
            f"agent {request.agent_name!r} no longer has tool {request.tool_name!r} (run {request.run_id}, "
            f"call {request.tool_call_id}); it was not run", type="ConfigurationError", non_retryable=True)
    attributes = {"hitl.agent": request.agent_name, "hitl.tool": request.tool_name, "hitl.run_id": request.run_id,
                  "hitl.tool_call_id": request.tool_call_id}  # never the arguments
    context = await _run_context(agent, request) if tool.takes_run_context else None
    owners = _owners(agent, request.run_id) if tool.takes_agent or tool.takes_team else {}
    before = copy.deepcopy(context.session_state) if context is not None else None
    async with _heartbeating():
        try:
            with telemetry.span("hitl.tool_call", attributes):
                output = await tool.invoke(request.arguments, run_context=context, **owners)
        except InvalidInputError as exc:
            raise ApplicationError(f"{exc} (run {request.run_id}, call {request.tool_call_id}); it was not run",
                                   type="InvalidToolArguments", non_retryable=True) from None
    if context is not None and context.session_id is not None and context.session_state != before:
        await asyncio.to_thread(sessions.save_state, agent, context.session_id, context.session_state or {}, before)
    return ToolRunResult(output=bounded(output))


async def _run_mcp_tool(agent: Agent, request: ToolRunRequest) -> ToolRunResult:
    """Call the tool on its MCP server, through this worker's session to it (``hitl.tools.mcp``)."""
    toolset = agent.mcp_toolsets.get(request.mcp_server or "")
    where = f"(run {request.run_id}, call {request.tool_call_id})"
    if toolset is None:
        raise ApplicationError(
            f"agent {request.agent_name!r} no longer has MCP server {request.mcp_server!r} {where}; the tool "
            f"{request.tool_name!r} was not run", type="ConfigurationError", non_retryable=True)
    attributes = {"hitl.agent": request.agent_name, "hitl.tool": request.tool_name, "hitl.run_id": request.run_id,
                  "hitl.tool_call_id": request.tool_call_id, "hitl.mcp_server": toolset.name}
    async with _heartbeating():
        try:
            with telemetry.span("hitl.tool_call", attributes):
                output = await toolset.call(request.mcp_tool or request.tool_name, request.arguments)
        except McpOutcomeUnknown as exc:  # sent, never answered: did it run? (retried only if idempotent)
            raise ApplicationError(f"{exc} {where}; it may have run", type=TOOL_OUTCOME_UNKNOWN) from None
        except McpServerError as exc:  # never sent: safe to try again
            raise ApplicationError(f"{exc} {where}", type="McpServerError") from None
    return ToolRunResult(output=bounded(output))


async def _run_context(agent: Agent, request: ToolRunRequest) -> RunContext:
    """The ``run_context`` a tool declares: the run's session and user (from the run, on any worker), the
    per-call dependencies of its caller when it runs in the caller's process (``hitl._core.context``) over the
    agent's own, the session's state from PostgreSQL."""
    context = _context.lookup(request.run_id) or RunContext(run_id=request.run_id)
    context.session_id = request.session_id or context.session_id
    context.user_id = request.user_id or context.user_id
    own = _context.resolve(agent.dependencies, agent=agent, run_context=context) or {}
    context.dependencies = {**own, **(context.dependencies or {})}
    if agent.session_state is not None or context.session_id is not None:
        context.session_state = await asyncio.to_thread(sessions.state, agent, context.session_id)
    return context


def _owners(agent: Agent, run_id: str) -> dict[str, Any]:
    """The ``agent`` and ``team`` a tool declares, as Agno injects them: a team's own tool gets the team
    (and no agent); an agent's tool gets the agent, and, when it runs as a team's member, that team."""
    if isinstance(agent, Team):
        return {"agent": None, "team": agent}
    return {"agent": agent, "team": _team_of(agent, run_id)}


def _team_of(agent: Agent, run_id: str) -> Team | None:
    """The team whose member run ``run_id`` is (``<team run>.<member>.<n>-<call>``, see workflows/team.py):
    the one team of this process that has ``agent`` as a member; None for a run of its own, or when
    several teams have it (which one delegated is not known here)."""
    if f".{member_slug(agent.name)}." not in run_id:
        return None
    teams = [t for t in registry.known() if isinstance(t, Team) and t.members.get(agent.name) is agent]
    return teams[0] if len(teams) == 1 else None


def bounded(output: str) -> str:
    """A tool's output as history, the model and the audit trail can all hold it (``hitl.limits``)."""
    output = limits.storable(output)
    if len(output) > limits.MAX_TOOL_OUTPUT_CHARS:
        cut = len(output) - limits.MAX_TOOL_OUTPUT_CHARS
        output = output[: limits.MAX_TOOL_OUTPUT_CHARS] + f"\n[truncated {cut} characters]"
    return output


@contextlib.asynccontextmanager
async def _heartbeating() -> AsyncIterator[None]:
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
