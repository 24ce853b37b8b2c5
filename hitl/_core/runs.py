"""Client side of a run: start it, decide on it, read it, cancel it, list runs. Shared by Agent and Team
(and by the CLI): every call turns Temporal's errors into ``hitl.errors`` that name the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast, overload

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.errordetails.v1 import WorkflowNotReadyFailure
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, CancelledError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from hitl import errors, ids, limits
from hitl._core import inline
from hitl._wire import WORKFLOW_NAME, RunInput, digest
from hitl.decisions import ChangeApproval, Decision, refuse_too_deep
from hitl.observability import visibility
from hitl.run import RunOutput, RunRequirement, RunStatus
from hitl.security.signing import Signer

_ERROR_TYPES: dict[str, type[errors.HitlError]] = {
    name: getattr(errors, name) for name in errors.__all__ if name != "HitlError"
}
log = logging.getLogger("hitl")
# The server admits at most history.maxInFlightUpdates (default 10) updates per run at once and
# refuses the rest before they reach the run: those are sent again, for this long at most.
_BUSY_RETRY_FOR = timedelta(seconds=30)
_WAITING_AFTER = timedelta(seconds=3)
"""A run whose workflow task is scheduled this long without a worker taking it is reported as waiting."""


def new_run_id() -> str:
    return f"run-{uuid.uuid4().hex}"


def check_start(run_input: RunInput, run_id: str) -> None:
    """Refuse what a run must not start with: ids a URL could reinterpret (``hitl.ids``) or PostgreSQL cannot
    index, text it cannot hold, a message too large."""
    ids.check_id(run_id, "run_id")
    if run_input.session_id is not None:
        ids.check_id(run_input.session_id, "session_id", where=f"run {run_id}")
    if (user := run_input.user_id) is not None:  # a principal's name: it travels in query strings, not paths
        if not user or len(user) > limits.MAX_ID_CHARS:
            raise errors.InvalidInputError(f"user_id {user[:40]!r}: give 1 to {limits.MAX_ID_CHARS} characters")
        if problem := limits.unstorable(user, "user_id"):
            raise errors.InvalidInputError(f"run {run_id}: {problem}, which the audit trail cannot store")
    message = run_input.message or ""
    if (problem := limits.unstorable(message, "message")) is not None:
        raise errors.InvalidInputError(f"run {run_id}: {problem}; send text without it")
    if (n := limits.json_bytes(message)) > limits.MAX_MESSAGE_BYTES:
        raise errors.PayloadTooLargeError(
            f"run {run_id}: the message is {limits.size(n)}, over hitl's limit of {limits.size(limits.MAX_MESSAGE_BYTES)} "
            "(hitl.limits.MAX_MESSAGE_BYTES)")


async def start(client: Client, task_queue: str, run_input: RunInput, run_id: str,
                on_waiting: Callable[[], Awaitable[bool]] | None = None) -> RunOutput:
    """Start a run and return when it first pauses or ends: one round trip (update-with-start).

    ``on_waiting``: asked when no worker takes the run; True (it now serves the run) keeps waiting."""
    check_start(run_input, run_id)
    attributes = TypedSearchAttributes([SearchAttributePair(visibility.STATUS, RunStatus.running.value),
                                        SearchAttributePair(visibility.AGENT, run_input.agent_name)])
    operation: WithStartWorkflowOperation[Any, RunOutput] = WithStartWorkflowOperation(
        WORKFLOW_NAME,
        run_input,
        id=run_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        result_type=RunOutput,
        # Set from the start, so a run no worker has taken yet is listed under its agent.
        search_attributes=attributes if run_input.search_attributes else None,
    )
    if not await _polled_lately(client, task_queue) and not (on_waiting is not None and await on_waiting()):
        return await _start_unpolled(client, task_queue, run_input, run_id, attributes)
    call = asyncio.ensure_future(client.execute_update_with_start_workflow(
        "wait_for_progress", 0, start_workflow_operation=operation, result_type=RunOutput))
    try:
        while True:
            done, _ = await asyncio.wait({call}, timeout=_WAITING_AFTER.total_seconds())
            if done:
                return cast(RunOutput, call.result())
            # No answer yet: a long first turn, or no worker that serves the agent. Not a silent hang.
            try:
                description = await _describe(client, run_id)
            except RPCError:
                continue
            waiting = await _waiting_for_worker(client, description)
            if waiting is not None and on_waiting is not None and await on_waiting():
                on_waiting = None  # served here now: the run goes on
                continue
            if waiting is not None:
                _cancel_start(call, operation)
                log.warning("run %s waits: %s", run_id, waiting)
                return _from_search_attributes(run_id, description, waiting)
    except WorkflowUpdateFailedError as exc:
        raise _translate(exc, run_id) from None
    except WorkflowAlreadyStartedError:
        with contextlib.suppress(BaseException):  # the SDK set it on the operation's handle too: retrieved here
            await operation.workflow_handle()
        raise errors.RunExistsError(f"a run with id {run_id!r} already exists") from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.ALREADY_EXISTS:
            raise errors.RunExistsError(f"a run with id {run_id!r} already exists") from None
        if _task_failing(exc):  # started, and taken by a worker that cannot run it: get says why
            return await get(client, run_id)
        raise _unavailable(client, exc, run_id, "start the run", sent=False) if _is_unavailable(exc) else exc from None
    finally:
        if not call.done():
            _cancel_start(call, operation)


_POLLED_FOR = 60.0
"""Seconds a task queue seen polled is taken as polled without asking again."""
_polled_at: dict[tuple[str, str, str], float] = {}


async def _polled_lately(client: Client, task_queue: str) -> bool:
    """Whether a worker serves ``task_queue``: one of this process, or one the server saw poll (asked at
    most once a minute per queue while it is polled).

    Why ask at all: an update-with-start no worker takes is one RPC the server holds for 20 s. A caller
    that gives up on it (after ``_WAITING_AFTER``) cannot take it back, and a process that exits while
    it is still held can crash in the SDK's native code on its way out (temporalio/sdk-python#300: a
    reply delivered while the interpreter finalizes). A run no worker serves is started without one.
    """
    if inline.served_here(task_queue):
        return True
    key = (getattr(client.service_client.config, "target_host", "?"), client.namespace, task_queue)
    now = asyncio.get_running_loop().time()
    if now - _polled_at.get(key, -_POLLED_FOR) < _POLLED_FOR:
        return True
    if not await inline.polled(client, task_queue):
        return False
    _polled_at[key] = now
    return True


async def _start_unpolled(client: Client, task_queue: str, run_input: RunInput, run_id: str,
                          attributes: TypedSearchAttributes) -> RunOutput:
    """Start a run on a task queue no worker polls, and give a worker that is starting up
    ``_WAITING_AFTER`` to come: then wait for the run as usual, else say it waits for a worker."""
    try:
        await client.start_workflow(WORKFLOW_NAME, run_input, id=run_id, task_queue=task_queue,
                                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                                    search_attributes=attributes if run_input.search_attributes else None)
    except WorkflowAlreadyStartedError:
        raise errors.RunExistsError(f"a run with id {run_id!r} already exists") from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.ALREADY_EXISTS:
            raise errors.RunExistsError(f"a run with id {run_id!r} already exists") from None
        raise _unavailable(client, exc, run_id, "start the run", sent=False) if _is_unavailable(exc) else exc from None
    loop = asyncio.get_running_loop()
    give_up = loop.time() + _WAITING_AFTER.total_seconds()
    while loop.time() < give_up:
        await asyncio.sleep(0.1)
        if await inline.polled(client, task_queue):
            return await _first_progress(client, run_id)
    try:
        description = await _describe(client, run_id)
    except RPCError as exc:  # started: say so, never a raw RPCError
        raise _unavailable(client, exc, run_id, "read the run it started", sent=False) from None
    waiting = await _waiting_for_worker(client, description, force=True)
    if waiting is None:  # a worker came at the last moment
        return await _first_progress(client, run_id)
    log.warning("run %s waits: %s", run_id, waiting)
    return _from_search_attributes(run_id, description, waiting)


async def _first_progress(client: Client, run_id: str) -> RunOutput:
    """The run at its first pause or end, as the start's update would have answered (a run that has
    already ended, taken by a quick worker, is read as it ended), or as it stands when no worker can
    take it: one that polls but does not serve its agent fails its task, and the server would hold
    the update for its whole deadline."""
    # One update id for every attempt: the server answers a repeat with the same update, so asking
    # again every few seconds adds nothing to the run's history.
    update_id = f"first-progress-{uuid.uuid4().hex}"
    while True:
        try:
            return await _update(client, run_id, "wait_for_progress", 0, [], update_id=update_id,
                                 rpc_timeout=_WAITING_AFTER)
        except (errors.RunEndedError, _TaskFailing):  # ended, or taken by a worker that cannot run it: get says why
            return await get(client, run_id)
        except _NoAnswerYet:
            pass
        try:
            description = await _describe(client, run_id)
        except RPCError:
            continue
        waiting = await _waiting_for_worker(client, description)
        if waiting is not None:
            log.warning("run %s waits: %s", run_id, waiting)
            return _from_search_attributes(run_id, description, waiting)


_draining: set[asyncio.Future[Any]] = set()


def _cancel_start(call: asyncio.Future[Any], operation: WithStartWorkflowOperation[Any, Any]) -> None:
    """Stop waiting for an update-with-start. The SDK also sets the cancellation on the operation's
    workflow handle, which nobody awaits: await it once, or the loop logs it as never retrieved."""
    call.cancel()
    # The SDK turns the cancellation into an error: retrieved here, or the loop logs it as never retrieved.
    call.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def drain() -> None:
        with contextlib.suppress(BaseException):
            await operation.workflow_handle()

    task = asyncio.ensure_future(drain())
    _draining.add(task)
    task.add_done_callback(_draining.discard)


M = TypeVar("M", bound=Decision | ChangeApproval)
T = TypeVar("T")


def signed(
    signer: Signer | None, run_id: str, messages: list[M], requirements: Sequence[RunRequirement], groups: Iterable[str] = (),
) -> list[M]:
    """``messages`` signed by ``signer`` (those not signed yet), each over its requirement's arguments."""
    if signer is None:
        return messages
    arguments = {r.id: digest(r.tool_execution.arguments) for r in requirements}
    out = []
    for m in messages:
        if m.signature is None:
            if m.requirement_id not in arguments:
                raise errors.RequirementNotFoundError(f"run {run_id} has no requirement {m.requirement_id!r} pending")
            m = signer.signed(m, run_id=run_id, requirement_id=m.requirement_id, arguments_digest=arguments[m.requirement_id],
                              groups=groups)
        out.append(m)
    return out


def decisions_of(requirements: Sequence[RunRequirement], run_id: str | None = None) -> list[Decision]:
    """The decisions made locally on requirements the run had not resolved when they were read: each
    one's :meth:`~hitl.run.RunRequirement.implied_decision` (made by a method, or implied by values
    assigned to a user-input requirement's asked fields).

    Raises:
        InvalidDecisionError: a user-input field holding the model's value was assigned another; the
            message names the run when ``run_id`` is given, the requirement and the field.
    """
    decisions = []
    for r in requirements:
        if r.resolution is not None:
            continue
        try:
            decision = r.implied_decision()
        except errors.InvalidDecisionError as exc:
            if run_id is None:
                raise
            raise type(exc)(f"run {run_id}, {exc}") from None
        if decision is not None:
            decisions.append(decision)
    return decisions


async def progress(client: Client, run_id: str) -> RunOutput:
    """``continue_run`` without decisions: the run once it has moved past the decisions it has.

    Raises:
        UnresolvedRequirementsError: the run is paused on requirements nobody has decided.
    """
    run = await get(client, run_id)
    if run.status.is_final or run.waiting_for_worker:
        return run
    if run.status == RunStatus.paused and run.active_requirements:
        names = ", ".join(f"{r.id!r} ({r.tool_execution.tool_name})" for r in run.active_requirements)
        raise errors.UnresolvedRequirementsError(
            f"run {run_id}: continue_run without decisions, but {names} still wait(s) for one: decide on the "
            "RunOutput's requirements (confirm, reject...) or resolve the approval (update_approval) first")
    return await _update(client, run_id, "wait_for_progress", run.pauses, [])


_applied_here: dict[tuple[str, str], str] = {}
"""Decisions :func:`decide` applied in this process, by (run, requirement): their action (bounded)."""


async def decide(client: Client, run_id: str, decision: Decision) -> RunOutput:
    """Apply one decision, validated by the run; returns at once with the run as it then stands."""
    ids.check_requirement_id(decision.requirement_id, f"run {run_id}")
    refuse_too_deep(decision, f"run {run_id}, requirement {decision.requirement_id!r}")
    output = await _update(client, run_id, "decide", decision, [decision.requirement_id])
    _applied_here[(run_id, decision.requirement_id)] = decision.action
    while len(_applied_here) > 10_000:
        del _applied_here[next(iter(_applied_here))]
    return output


async def change(client: Client, run_id: str, change: ChangeApproval) -> RunOutput:
    """Reassign a pending approval or extend its deadline."""
    ids.check_requirement_id(change.requirement_id, f"run {run_id}")
    return await _update(client, run_id, "change_approval", change, [])


@overload
async def _update(client: Client, run_id: str, name: str, argument: Any, decided: list[str], *,
                  update_id: str | None = None, rpc_timeout: timedelta | None = None) -> RunOutput: ...
@overload
async def _update(client: Client, run_id: str, name: str, argument: Any, decided: list[str], result_type: type[T], *,
                  update_id: str | None = None, rpc_timeout: timedelta | None = None) -> T: ...
async def _update(client: Client, run_id: str, name: str, argument: Any, decided: list[str],
                  result_type: type[Any] = RunOutput, *, update_id: str | None = None,
                  rpc_timeout: timedelta | None = None) -> Any:
    """Send an update, retried while the server turns it away unapplied. With ``rpc_timeout``, no answer
    in that time raises :class:`_NoAnswerYet` (send it again with the same ``update_id``)."""
    handle = client.get_workflow_handle(run_id)
    give_up = asyncio.get_running_loop().time() + _BUSY_RETRY_FOR.total_seconds()
    delay = 0.05
    # One id for every attempt: an update the server took and answered is answered again, never applied twice.
    update_id = update_id or str(uuid.uuid4())
    failure_read = False  # the run's history is read once per call, when the server says its task fails
    while True:
        try:
            return await handle.execute_update(name, argument, id=update_id, result_type=result_type,
                                               rpc_timeout=rpc_timeout)
        except WorkflowUpdateFailedError as exc:
            raise _translate(exc, run_id) from None
        except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
            # The SDK reports the caller's own cancellation the same way: it stays a cancellation.
            task = asyncio.current_task()
            if isinstance(exc.__cause__, asyncio.CancelledError) or (task is not None and task.cancelling()):
                raise asyncio.CancelledError from None
            if rpc_timeout is not None:
                raise _NoAnswerYet from None
            raise errors.TemporalUnavailableError(
                f"run {run_id}: no answer to {name} in time; it may have been applied: read the run (get_run) before "
                "sending it again (a decision already applied is refused, never applied twice)") from None
        except RPCError as exc:
            failing = None
            if _task_failing(exc) and not failure_read:
                failure_read = True
                failing = await _worker_failure(client, run_id)
            if failing is not None:
                raise _TaskFailing(
                    f"run {run_id}: {name} was not applied: no worker can take the run now, its workflow task fails "
                    f"({failing}); send it again once a worker that serves it runs") from None
            if _not_taken(exc) and asyncio.get_running_loop().time() < give_up:
                # Turned away before the run accepted it (too many in flight; dropped with a workflow task the
                # server refused; dropped from the server's memory), sent again under the same id: a run that
                # had taken it answers it again rather than applying it twice.
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if _is_unavailable(exc):
                raise _unavailable(client, exc, run_id, name, sent=True) from None
            raise await _rpc_error(client, exc, run_id, decided) from None


class _NoAnswerYet(Exception):
    """An update sent with a deadline got no answer in it (the run may still take it)."""


class _TaskFailing(errors.TemporalUnavailableError):
    """The server refused an update because the run's workflow task keeps failing (a worker that does
    not serve its agent took it, or its code raises): nothing was applied."""


def _task_failing(exc: RPCError) -> bool:
    # The server's only sign is its message: the detail (WorkflowNotReadyFailure) is the same for a task
    # the server refused to close, which the next task fixes.
    return exc.status == RPCStatusCode.FAILED_PRECONDITION and "workflow task in failed state" in exc.message.lower()


_WORKER_FAILURES = {
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,  # raised, or agent not served
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR,  # code that no longer replays its history
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNSPECIFIED,  # the SDK's other failures of its own
}


async def _worker_failure(client: Client, run_id: str) -> str | None:
    """Why the run's last workflow task failed, if a worker failed it (its code raised, does not serve the
    agent, or no longer replays the history): a retry cannot help. None for a close the server refused
    (an event came meanwhile), which the next task fixes, and when the history cannot be read."""
    last = None
    try:
        async for event in client.get_workflow_handle(run_id).fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                last = event.workflow_task_failed_event_attributes
    except RPCError:
        return None
    if last is None or last.cause not in _WORKER_FAILURES:
        return None
    return last.failure.message or "no reason given"


def _not_taken(exc: RPCError) -> bool:
    """The server turned the update away, to be sent again: too many in flight, the workflow task
    carrying it failed (a close refused for an event that came meanwhile), or the server dropped
    its in-memory updates (under load; "workflow update was aborted", which the server means to be
    retried; current servers send it only before the run accepted the update, and the retry carries
    the same update id)."""
    if exc.status == RPCStatusCode.RESOURCE_EXHAUSTED:
        return True
    if exc.status == RPCStatusCode.UNAVAILABLE and exc.message.lower().startswith("workflow update was aborted"):
        return True
    return exc.status == RPCStatusCode.FAILED_PRECONDITION and any(
        detail.Is(WorkflowNotReadyFailure.DESCRIPTOR) for detail in exc.grpc_status.details)


def _is_unavailable(exc: RPCError) -> bool:
    return exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)


def _unavailable(client: Client, exc: RPCError, run_id: str, what: str, *, sent: bool) -> errors.TemporalUnavailableError:
    address = getattr(client.service_client.config, "target_host", "?")
    maybe = (" It may have been applied: read the run (get_run) before sending it again; a decision already "
             "applied is refused, never applied twice.") if sent else ""
    return errors.TemporalUnavailableError(
        f"run {run_id}: Temporal at {address} could not be reached to {what} ({exc.message.splitlines()[0]}).{maybe}")


async def get(client: Client, run_id: str) -> RunOutput:
    """A run as it stands, open or closed; one no worker can take now says so in ``waiting_for_worker``."""
    try:
        description = await _describe(client, run_id)
    except RPCError as exc:
        if _is_unavailable(exc):
            raise _unavailable(client, exc, run_id, "read the run", sent=False) from None
        raise await _rpc_error(client, exc, run_id, []) from None
    status = WorkflowExecutionStatus(description.workflow_execution_info.status)
    handle = client.get_workflow_handle(run_id)
    if status == WorkflowExecutionStatus.RUNNING:
        waiting = await _waiting_for_worker(client, description)
        if waiting is not None:
            return _from_search_attributes(run_id, description, waiting)
        try:
            return await _read(lambda: handle.query("get_run", result_type=RunOutput, rpc_timeout=timedelta(seconds=10)))
        except (WorkflowQueryFailedError, RPCError) as exc:
            waiting = await _waiting_for_worker(client, await _describe(client, run_id), force=True)
            if waiting is None:
                raise errors.HitlError(f"run {run_id}: could not be read ({exc})") from None
            return _from_search_attributes(run_id, description, waiting)
    if status == WorkflowExecutionStatus.COMPLETED:
        return cast(RunOutput, await client.get_workflow_handle(run_id, result_type=RunOutput).result())
    try:  # cancelled or failed: the run's own view of its end, requirements included
        return cast(RunOutput, await handle.query("get_run", result_type=RunOutput, rpc_timeout=timedelta(seconds=30)))
    except (WorkflowQueryFailedError, RPCError):
        pass
    try:
        await handle.result()
    except WorkflowFailureError as exc:
        if isinstance(exc.cause, CancelledError):
            return RunOutput(run_id=run_id, status=RunStatus.cancelled)
        message = exc.cause.message if isinstance(exc.cause, ApplicationError) else str(exc.cause)
        return RunOutput(run_id=run_id, status=RunStatus.error, error=message, content=message)
    return RunOutput(run_id=run_id, status=RunStatus.error, error=f"run ended {status.name.lower()}")


async def _waiting_for_worker(client: Client, description: Any, *, force: bool = False) -> str | None:
    """Why no worker takes the run now, or None: its task queue has no poller, or its task keeps failing."""
    pending = description.pending_workflow_task
    if not description.HasField("pending_workflow_task") and not force:
        return None
    queue = description.execution_config.task_queue.name
    run_id = description.workflow_execution_info.execution.workflow_id
    if pending.attempt > 1:
        reason = await _last_task_failure(client, run_id)
        if reason:
            return f"its workflow task failed {pending.attempt - 1} time(s): {reason}"
    scheduled = pending.scheduled_time.ToDatetime() if pending.HasField("scheduled_time") else None
    if not force and scheduled is not None and datetime.now(UTC).replace(tzinfo=None) - scheduled < _WAITING_AFTER:
        return None
    if not await inline.polled(client, queue):  # no poller, or only exited local ones
        agent = _attribute(description, visibility.AGENT.name)
        return (f"no worker polls task queue {queue!r}" + (f" for agent {agent!r}" if agent else "") +
                "; start one that serves it (hitl worker --agents <module>)")
    return None


async def _last_task_failure(client: Client, run_id: str) -> str | None:
    handle = client.get_workflow_handle(run_id)
    last = None
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            last = event.workflow_task_failed_event_attributes.failure.message
    return last


def _attribute(description: Any, name: str) -> str | None:
    field = description.workflow_execution_info.search_attributes.indexed_fields.get(name)
    if field is None or not field.data:
        return None
    value = json.loads(field.data)
    return value if isinstance(value, str) else None


def _from_search_attributes(run_id: str, description: Any, waiting: str) -> RunOutput:
    status = _attribute(description, visibility.STATUS.name) or RunStatus.running.value
    return RunOutput(run_id=run_id, agent_name=_attribute(description, visibility.AGENT.name) or "",
                     status=RunStatus(status) if status in RunStatus.__members__ else RunStatus.running,
                     waiting_for_worker=waiting)


async def cancel(client: Client, run_id: str, *, reason: str | None = None, wait: float = 300.0) -> RunOutput:
    """Cancel a run and return it once it has closed (its pending approvals are then ``cancelled``),
    or as it stands after ``wait`` seconds (no worker has taken the cancellation yet)."""
    handle = client.get_workflow_handle(run_id)
    try:
        description = await _describe(client, run_id)
        status = WorkflowExecutionStatus(description.workflow_execution_info.status)
        if status != WorkflowExecutionStatus.RUNNING:
            raise errors.RunEndedError(f"run {run_id} has ended ({status.name.lower()}); there is nothing to cancel")
        # A run that has answered closes a moment later (it commits its tool results first): it has ended too.
        own = _attribute(description, visibility.STATUS.name)
        if own is not None and own in _LIST_STATUSES and RunStatus(own).is_final:
            raise errors.RunEndedError(f"run {run_id} has ended ({own}); there is nothing to cancel")
        await handle.cancel(reason=reason or "")
    except RPCError as exc:
        if _is_unavailable(exc):
            raise _unavailable(client, exc, run_id, "cancel the run", sent=True) from None
        raise await _rpc_error(client, exc, run_id, []) from None
    try:
        await asyncio.wait_for(handle.result(), wait)
    except (WorkflowFailureError, TimeoutError):
        pass
    return await get(client, run_id)


_LIST_STATUSES = {s.value for s in RunStatus}


def _translate(exc: WorkflowUpdateFailedError, run_id: str) -> errors.HitlError:
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.type in _ERROR_TYPES:
        return _ERROR_TYPES[cause.type](cause.message)
    return errors.HitlError(f"run {run_id}: {getattr(cause, 'message', None) or exc}")


async def _rpc_error(client: Client, exc: RPCError, run_id: str, decided: list[str]) -> Exception:
    if exc.status == RPCStatusCode.INVALID_ARGUMENT:  # a malformed id or argument: the caller's to fix
        return errors.InvalidInputError(f"run {run_id[:200]}: Temporal refused it as invalid ({exc.message})")
    if exc.status != RPCStatusCode.NOT_FOUND:
        return errors.HitlError(f"run {run_id}: Temporal refused the call ({exc.status.name if exc.status else '?'}: "
                                f"{exc.message})")
    try:
        description = await _describe(client, run_id)
    except RPCError:
        return errors.RunNotFoundError(f"no run with id {run_id!r} in namespace {client.namespace!r}")
    closed = WorkflowExecutionStatus(description.workflow_execution_info.status)
    status = closed.name.lower()
    # A caller that lost a race to a run that has since ended: say who decided first. A completed run's
    # result holds its last pause, no worker needed; a query on a closed run makes a worker replay it, which
    # under load (a dozen losers at once) can outlast the query's timeout.
    if decided and closed == WorkflowExecutionStatus.COMPLETED:
        try:
            final = await client.get_workflow_handle(run_id, result_type=RunOutput).result(
                rpc_timeout=timedelta(seconds=30))
        except (WorkflowFailureError, RPCError):
            final = None
        for rid in decided:
            found = next((r for r in final.requirements if r.id == rid or r.id.endswith("/" + rid)), None) if final else None
            if found is not None and found.resolution is not None:
                how = f"{found.resolution}" + (f" by {found.resolved_by}" if found.resolved_by else "")
                return errors.RequirementAlreadyResolvedError(
                    f"run {run_id}: requirement {rid!r} was already resolved: {how}; the run has since ended ({status})")
    for rid in decided:
        try:
            how = await client.get_workflow_handle(run_id).query(
                "resolution_of", rid, rpc_timeout=timedelta(seconds=30))
        except (WorkflowQueryFailedError, RPCError):
            continue
        if how:
            return errors.RequirementAlreadyResolvedError(
                f"run {run_id}: requirement {rid!r} was already resolved: {how}; the run has since ended ({status})")
    return errors.RunEndedError(f"run {run_id} has ended ({status}); it takes no decisions")


async def _describe(client: Client, run_id: str) -> Any:
    # Not handle.describe(): it decodes search attributes, and the time-skipping server returns an
    # unset datetime attribute as a null that does not decode.
    request = DescribeWorkflowExecutionRequest(namespace=client.namespace, execution=WorkflowExecution(workflow_id=run_id))
    return await _read(lambda: client.workflow_service.describe_workflow_execution(request))


async def _read(call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, a read, sent again (twice at most) when the connection dropped under it: the server closes
    each connection after a while (its keep-alive's maximum age), and a call caught in that moment comes
    back CANCELLED ("operation was canceled") though the server is fine. A read changes nothing."""
    for delay in (0.1, 0.5):
        try:
            return await call()
        except RPCError as exc:
            if exc.status not in (RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE):
                raise
        await asyncio.sleep(delay)
    return await call()
