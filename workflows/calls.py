"""Running one tool call of a run: as a local activity, or as a remote one once a decision allows it.

A call that waited for a decision runs as a remote activity, scheduled by the workflow task that
applied the decision: it can start only once that task, and with it the decision, is committed to
history. A local activity would run inside the task, before the commit; if the server then
discarded the task (an aborted update, a crash), the tool would have run for a decision history
never recorded, and a replay could accept another one, a rejection included. The worker asks for
such activities eagerly, so they skip the server's task queue on the way out.

A tool marked ``idempotent=False`` is a remote activity with a single attempt, so a worker that
dies after it started can never make it run again unseen: its timeout pauses the run for a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

import hitl.workflows.generation as generation
from hitl._wire import RUN_TOOL, TOOL_OUTCOME_UNKNOWN, PendingCall, ToolCallPlan, ToolRunRequest, ToolRunResult

GATED_REMOTE_PATCH = "hitl-decided-tools-remote"
"""A tool call that waited for a decision runs as a remote activity (before: a local one)."""
HEARTBEAT = timedelta(seconds=10)
"""A remote tool's worker is known dead this soon (sooner than the tool's own timeout)."""
# A remote activity's failure arrives as ActivityError(cause=...); a local one's as its cause.
ACTIVITY_FAILURES = (ActivityError, ApplicationError, TimeoutError)


@dataclass
class Outcome:
    output: str | None = None
    uncertain: bool = False
    """A non-idempotent tool timed out or lost its worker: it may have run; a person decides."""
    ok: bool = False
    """The tool ran and answered (not an error)."""
    ran_locally: bool = False
    """Its result is in a local-activity marker, not yet committed (the run seals before closing)."""


async def execute(call: PendingCall, run_id: str, agent_name: str, session_id: str | None = None,
                  user_id: str | None = None) -> Outcome:
    """Run the call's tool; its output for the model, or an uncertain outcome."""
    plan = call.plan
    request = ToolRunRequest(run_id=run_id, agent_name=agent_name, tool_name=plan.tool_name,
                             tool_call_id=plan.tool_call_id, arguments=call.arguments, session_id=session_id,
                             user_id=user_id, mcp_server=plan.mcp_server, mcp_tool=plan.mcp_tool)
    timeout = timedelta(seconds=plan.timeout_seconds)
    remote = call.requirement_id is not None or not plan.idempotent
    # Asked only where a remote activity may run: histories recorded before ran decided calls locally.
    current = remote and generation.patched(GATED_REMOTE_PATCH)
    local = plan.idempotent and not (current and call.requirement_id is not None)
    while True:
        try:
            if local:
                result = await _run_local(request, plan, timeout)
            else:
                result = await _run_remote(request, plan, timeout, current=current)
        except ACTIVITY_FAILURES as exc:
            if cause_type(exc) == "AgentNotServed":
                # On a task queue shared with workers that lack the agent: wait for one that has it.
                workflow.logger.warning("run %s: tool %s went to a worker without agent %r; trying again",
                                        run_id, plan.tool_name, agent_name)
                await workflow.sleep(timedelta(seconds=5))
                continue
            # Only calls that were never answered raise TOOL_OUTCOME_UNKNOWN (MCP tools, newer than every
            # recorded history): replays take the same branch as before.
            if not plan.idempotent and (isinstance(root(exc), TimeoutError) or cause_type(exc) == TOOL_OUTCOME_UNKNOWN):
                return Outcome(uncertain=True)
            return Outcome(output=f"Error: tool {plan.tool_name!r} failed: {cause_message(exc)}", ran_locally=local)
        return Outcome(output=result.output, ok=True, ran_locally=local)


async def _run_local(request: ToolRunRequest, plan: ToolCallPlan, timeout: timedelta) -> ToolRunResult:
    return await workflow.execute_local_activity(
        RUN_TOOL,
        request,
        result_type=ToolRunResult,
        start_to_close_timeout=timeout,
        retry_policy=RetryPolicy(maximum_attempts=plan.max_attempts,
                                 non_retryable_error_types=["ConfigurationError", "InvalidToolArguments"]),
        summary=plan.tool_name,
    )


async def _run_remote(request: ToolRunRequest, plan: ToolCallPlan, timeout: timedelta, *, current: bool) -> ToolRunResult:
    return await workflow.execute_activity(
        RUN_TOOL,
        request,
        result_type=ToolRunResult,
        start_to_close_timeout=timeout,
        heartbeat_timeout=min(HEARTBEAT, timeout) if current else None,
        retry_policy=RetryPolicy(maximum_attempts=plan.max_attempts if plan.idempotent else 1,
                                 non_retryable_error_types=["ConfigurationError", "InvalidToolArguments"])
        if current else RetryPolicy(maximum_attempts=1),  # as recorded before the patch
        summary=plan.tool_name,
    )


def root(exc: BaseException) -> BaseException:
    return exc.cause if isinstance(exc, ActivityError) and exc.cause is not None else exc


def cause_message(exc: BaseException) -> str:
    cause = root(exc)
    return cause.message if isinstance(cause, ApplicationError) else str(cause)


def cause_type(exc: BaseException) -> str:
    cause = root(exc)
    return (cause.type or "ActivityError") if isinstance(cause, ApplicationError) else type(cause).__name__
