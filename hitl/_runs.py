"""Client side of a run: start it, decide on it, read it. Shared by Agent and Team."""

from __future__ import annotations

import uuid
from typing import Any
from collections.abc import Sequence

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.service import RPCError, RPCStatusCode

from hitl import errors
from hitl._wire import WORKFLOW_NAME, RunInput
from hitl.decisions import ChangeApproval, ContinueRunRequest, Decision
from hitl.run import RunOutput, RunRequirement, RunStatus

_ERROR_TYPES: dict[str, type[errors.HitlError]] = {
    name: getattr(errors, name) for name in errors.__all__ if name != "HitlError"
}


def new_run_id() -> str:
    return f"run-{uuid.uuid4().hex}"


async def start(client: Client, task_queue: str, run_input: RunInput, run_id: str) -> RunOutput:
    """Start a run and return when it first pauses or ends: one round trip (update-with-start)."""
    operation: WithStartWorkflowOperation[Any, RunOutput] = WithStartWorkflowOperation(
        WORKFLOW_NAME,
        run_input,
        id=run_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        result_type=RunOutput,
    )
    try:
        return await client.execute_update_with_start_workflow(
            "wait_for_progress", 0, start_workflow_operation=operation, result_type=RunOutput
        )
    except WorkflowUpdateFailedError as exc:
        raise _translate(exc, run_id) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.ALREADY_EXISTS:
            raise errors.ConfigurationError(f"a run with id {run_id!r} already exists") from None
        raise


def decisions_of(requirements: Sequence[RunRequirement]) -> list[Decision]:
    """The decisions made locally on requirements the run had not resolved when they were read."""
    return [r.decision for r in requirements if r.decision is not None and r.resolution is None]


async def continue_(client: Client, run_id: str, requirements: Sequence[RunRequirement]) -> RunOutput:
    """Send the decisions that resolve the pause; returns when the run next pauses or ends."""
    return await _update(client, run_id, "continue_run", ContinueRunRequest(decisions=decisions_of(requirements)))


async def decide(client: Client, run_id: str, decision: Decision) -> RunOutput:
    """Apply one decision, validated by the run; returns at once with the run as it then stands."""
    return await _update(client, run_id, "decide", decision)


async def change(client: Client, run_id: str, change: ChangeApproval) -> RunOutput:
    """Reassign a pending approval or extend its deadline."""
    return await _update(client, run_id, "change_approval", change)


async def _update(client: Client, run_id: str, name: str, argument: object) -> RunOutput:
    handle = client.get_workflow_handle(run_id)
    try:
        return await handle.execute_update(name, argument, result_type=RunOutput)
    except WorkflowUpdateFailedError as exc:
        raise _translate(exc, run_id) from None
    except RPCError as exc:
        raise await _rpc_error(client, exc, run_id) from None


async def get(client: Client, run_id: str) -> RunOutput:
    try:
        status = await _status(client, run_id)
    except RPCError as exc:
        raise await _rpc_error(client, exc, run_id) from None
    if status == WorkflowExecutionStatus.RUNNING:
        return await client.get_workflow_handle(run_id).query("get_run", result_type=RunOutput)
    try:
        return await client.get_workflow_handle(run_id, result_type=RunOutput).result()
    except WorkflowFailureError as exc:
        if isinstance(exc.cause, CancelledError):
            return RunOutput(run_id=run_id, status=RunStatus.cancelled)
        message = exc.cause.message if isinstance(exc.cause, ApplicationError) else str(exc.cause)
        return RunOutput(run_id=run_id, status=RunStatus.error, error=message, content=message)


def _translate(exc: WorkflowUpdateFailedError, run_id: str) -> errors.HitlError:
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.type in _ERROR_TYPES:
        return _ERROR_TYPES[cause.type](cause.message)
    return errors.HitlError(f"run {run_id}: {getattr(cause, 'message', None) or exc}")


async def _rpc_error(client: Client, exc: RPCError, run_id: str) -> Exception:
    if exc.status != RPCStatusCode.NOT_FOUND:
        return exc
    try:
        status = await _status(client, run_id)
    except RPCError:
        return errors.RunNotFoundError(f"no run with id {run_id!r} in namespace {client.namespace!r}")
    return errors.RunEndedError(f"run {run_id} has ended ({status.name.lower()}); it takes no decisions")


async def _status(client: Client, run_id: str) -> WorkflowExecutionStatus:
    # Not handle.describe(): it decodes search attributes, and the time-skipping server returns an
    # unset datetime attribute as a null that does not decode.
    response = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(namespace=client.namespace, execution=WorkflowExecution(workflow_id=run_id))
    )
    return WorkflowExecutionStatus(response.workflow_execution_info.status)
