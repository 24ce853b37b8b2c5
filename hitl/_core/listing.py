"""Listing runs by hitl's search attributes (``hitl.observability.visibility``): the query is built here, never
from a caller's string; a value that could change the query is refused, not escaped."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from hitl import errors
from hitl._core.runs import _LIST_STATUSES, _is_unavailable, _unavailable
from hitl._wire import WORKFLOW_NAME
from hitl.observability import visibility
from hitl.run import RunStatus, RunSummary

__all__ = ["list_runs"]


def _quoted(field: str, value: str) -> str:
    # Visibility queries have no parameters: refuse what could change the query rather than escape it.
    if not value or any(c in value for c in "\"'\\`\n\r\t\x00") or len(value) > 1000:
        raise errors.InvalidInputError(f"list_runs {field}={value[:60]!r}: a plain name, without quotes or backslashes")
    return f'"{value}"'


async def list_runs(
    client: Client, *, status: str | None = None, tool: str | None = None, agent: str | None = None,
    team_run_id: str | None = None, deadline_before: datetime | None = None, limit: int = 100,
) -> list[RunSummary]:
    """Runs by hitl's search attributes, newest first (see ``hitl.observability.visibility``).

    ``deadline_before``: only runs with a pending approval whose deadline is earlier.
    """
    if status is not None and str(status) not in _LIST_STATUSES:
        raise errors.InvalidInputError(f"list_runs status={status!r}: one of {sorted(_LIST_STATUSES)}")
    if not 1 <= limit <= 10_000:
        raise errors.InvalidInputError(f"list_runs limit={limit}: from 1 to 10,000")
    clauses = [f"WorkflowType = {_quoted('workflow type', WORKFLOW_NAME)}"]
    if status is not None:
        clauses.append(f"{visibility.STATUS.name} = {_quoted('status', str(status))}")
    if tool is not None:
        clauses.append(f"{visibility.PENDING_TOOLS.name} = {_quoted('tool', tool)}")
    if agent is not None:
        clauses.append(f"{visibility.AGENT.name} = {_quoted('agent', agent)}")
    if team_run_id is not None:
        clauses.append(f"{visibility.TEAM_RUN_ID.name} = {_quoted('team_run_id', team_run_id)}")
    if deadline_before is not None:
        when = deadline_before if deadline_before.tzinfo else deadline_before.replace(tzinfo=UTC)
        clauses.append(f'{visibility.NEXT_DEADLINE.name} < "{when.astimezone(UTC).isoformat()}"')
    found = []
    try:
        async for execution in client.list_workflows(" AND ".join(clauses), limit=limit):
            attrs = execution.typed_search_attributes
            ended = execution.status not in (None, WorkflowExecutionStatus.RUNNING)
            found.append(RunSummary(
                run_id=execution.id, agent_name=attrs.get(visibility.AGENT),
                status=attrs.get(visibility.STATUS) or (execution.status.name.lower() if ended and execution.status
                                                        else RunStatus.running.value),
                pending_tools=list(attrs.get(visibility.PENDING_TOOLS) or []),
                next_deadline=attrs.get(visibility.NEXT_DEADLINE), team_run_id=attrs.get(visibility.TEAM_RUN_ID),
                started_at=execution.start_time, closed_at=execution.close_time,
            ))
    except RPCError as exc:
        if _is_unavailable(exc):
            raise _unavailable(client, exc, "(list)", "list runs", sent=False) from None
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:
            raise errors.InvalidInputError(f"list_runs: Temporal refused the query as invalid ({exc.message})") from None
        raise errors.HitlError(f"list_runs: Temporal refused the query ({exc.message})") from None
    return found
