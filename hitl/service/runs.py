"""``/runs``: start a run of an agent this service serves, read, continue, cancel and list runs."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from temporalio.client import Client

from hitl import ids
from hitl._core import approvals as _approvals
from hitl._core import listing, registry, sessions
from hitl._core import records as _records
from hitl._core import runs as _runs
from hitl.decisions import Decision, refuse_too_deep
from hitl.errors import (
    ConfigurationError,
    InvalidDecisionError,
    PermissionDeniedError,
    RequirementNotFoundError,
    RunExistsError,
    RunNotFoundError,
    UnresolvedRequirementsError,
)
from hitl.identity import Principal
from hitl.run import RunOutput
from hitl.service._state import State
from hitl.service.auth import decider, require
from hitl.service.errors import AUTHENTICATED, problems
from hitl.service.idempotency import IdempotencyKey, run_once
from hitl.service.models import CancelRun, ContinueRun, RunFilters, RunPage, StartRun

router = APIRouter(prefix="/runs", tags=["runs"], responses=AUTHENTICATED)
RunId = Annotated[str, Path(min_length=1, max_length=ids.MAX_SEGMENT_CHARS, pattern=ids.SEGMENT_PATTERN,
                            description=f"The run's id (its Temporal workflow id): {ids.RULE}.")]
Wait = Annotated[float | None, Query(ge=0, le=3600, description="Seconds to wait for the run (default HITL_RESOLVE_WAIT_SECONDS).")]


@router.post("", response_model=RunOutput, status_code=201, responses=problems(404, 409, 502, 503), summary="Start a run")
async def start_run(
    body: StartRun, principal: Annotated[Principal, Depends(require("runs:start"))], s: State, request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Start a run of ``agent`` (one of the modules given to ``hitl serve --agents``) for the caller:
    the run's ``user_id`` is the caller, so separation of duties holds. Answers when the run first
    pauses or ends (or, when no worker serves the agent, says so in ``waiting_for_worker``)."""
    if body.user_id is not None and body.user_id != principal.name:
        raise PermissionDeniedError(f"user_id {body.user_id[:80]!r} is not the caller; a run is started for the "
                                    f"authenticated principal ({principal.name!r})")
    try:
        agent = registry.get(body.agent)
    except ConfigurationError:
        raise RunNotFoundError(f"agent {body.agent!r} is not served by this service: start it with "
                               "hitl serve --agents <module defining it>") from None

    async def call() -> RunOutput:
        # With an Idempotency-Key, a run without a run_id of its own gets one from the key's first use: a retry
        # that takes over the key after the first request's service died finds the run that request started.
        origin = getattr(request.state, "idempotency_origin", None)
        run_id = body.run_id or ("run-" + hashlib.sha256(origin.encode()).hexdigest()[:32] if origin else None)
        try:
            return await agent.arun(body.message, run_id=run_id, session_id=body.session_id, user_id=principal.name)
        except RunExistsError:
            if body.run_id is not None or run_id is None:
                raise
            return await _runs.get(await s.temporal(), run_id)  # this principal's, started with this key

    return await run_once(request, s.db, principal, idempotency_key, call, status_code=201)


@router.get("", response_model=RunPage, responses=problems(502, 503), summary="List runs")
async def list_runs(
    filters: Annotated[RunFilters, Query()], principal: Annotated[Principal, Depends(require("runs:read"))], s: State,
) -> RunPage:
    """Runs by hitl's search attributes (status, pending tool, agent, team, deadline), newest first."""
    found = await listing.list_runs(await s.temporal(), **filters.model_dump())
    return RunPage(data=found, meta={"count": len(found), "limit": filters.limit})


@router.get("/{run_id}", response_model=RunOutput, responses=problems(404, 502, 503), summary="A run as it stands")
async def get_run(run_id: RunId, principal: Annotated[Principal, Depends(require("runs:read"))], s: State) -> RunOutput:
    return await _runs.get(await s.temporal(), run_id)


@router.post("/{run_id}/continue", response_model=RunOutput, responses=problems(404, 409, 429, 502, 503),
             summary="Decide a run's pause")
async def continue_run(
    run_id: RunId, body: ContinueRun, principal: Annotated[Principal, Depends(decider)], s: State,
    request: Request, idempotency_key: IdempotencyKey = None, wait: Wait = None,
) -> JSONResponse:
    """Decisions that, with those already made, resolve the whole pause, each made as the caller
    (a decision naming anyone else in ``resolved_by`` is refused). Answers at the run's next pause or end.
    A requirement the caller may not see is answered as unknown (404), as on ``/approvals``."""
    decisions = []
    for d in body.decisions:
        ids.check_requirement_id(d.requirement_id, f"run {run_id}")
        refuse_too_deep(d, f"run {run_id}, requirement {d.requirement_id!r}")
        if d.resolved_by is not None and d.resolved_by != principal.name:
            raise PermissionDeniedError(
                f"run {run_id}, requirement {d.requirement_id!r}: resolved_by {d.resolved_by[:80]!r} is not the caller; "
                f"decisions are made as the authenticated principal ({principal.name!r})")
        decisions.append(d.model_copy(update={"resolved_by": principal.name}))

    async def call() -> RunOutput:
        client = await s.temporal()
        run = await s.throttle.counting(principal.name, _visible_pause(client, run_id, decisions, principal))
        signed = decisions
        if s.signer is not None:  # over each requirement's arguments, as the run holds them
            signed = _runs.signed(s.signer, run_id, decisions, run.requirements, groups=principal.groups)
        wait_for = s.config.resolve_wait_seconds if wait is None else wait
        decided, waiting = await s.throttle.counting(
            principal.name, _approvals.continue_within(client, run_id, signed, wait_for))
        # The records say what the answer says (read-your-writes), for a run this table records: a run
        # whose agent keeps no approvals here would make every answer wait for rows that never come.
        if not waiting and await s.db.records_run(run_id):
            await _records.settled_in(s.db, decided, signed)
            await sessions.seen(decided)  # a completed run joins its session's history
        return decided

    return await run_once(request, s.db, principal, idempotency_key, call)


async def _visible_pause(client: Client, run_id: str, decisions: list[Decision], principal: Principal) -> RunOutput:
    """The run, if every decision names a requirement the caller may see and they leave none it may see undecided.

    Raises:
        RunNotFoundError: no such run, or none of its requirements is visible to the caller.
        RequirementNotFoundError: a decision names a requirement the run lacks or the caller may not see.
        UnresolvedRequirementsError: requirements the caller may see are left undecided (only those are named).
    """
    run = await _runs.get(client, run_id)
    visible = [r for r in run.requirements if _approvals.may_see_requirement(r, principal)]
    if not visible and not principal.has("runs:read"):
        raise RunNotFoundError(f"no run {run_id} with approvals you may see")
    named = set()
    for d in decisions:
        # As the run finds it: its own id first, else the one member requirement of that id; then, visible?
        hits = [r for r in run.requirements if r.id == d.requirement_id] or \
            [r for r in run.requirements if r.id.endswith("/" + d.requirement_id)]
        if len(hits) > 1:
            raise InvalidDecisionError(f"run {run_id}: requirement {d.requirement_id!r} is ambiguous (several members "
                                       "have one of that id): name it <member_run_id>/<requirement_id>")
        if not hits or hits[0] not in visible:
            raise RequirementNotFoundError(f"run {run_id} has no requirement {d.requirement_id!r} that you may see")
        named.add(hits[0].id)
    pending = [r for r in run.requirements if r.resolution is None and r.id not in named]
    if pending:
        shown = [f"{r.id} ({r.tool_execution.tool_name})" for r in pending if r in visible]
        hidden = len(pending) - len(shown)
        more = f"{' and ' if shown else ''}{hidden} you may not see" if hidden else ""
        raise UnresolvedRequirementsError(
            f"run {run_id}: requirements left without a decision: {', '.join(shown)}{more}; a continue decides the whole "
            "pause (decide one approval with POST /approvals/{id}/resolve)")
    return run


@router.post("/{run_id}/cancel", response_model=RunOutput, responses=problems(404, 409, 502, 503), summary="Cancel a run")
async def cancel_run(
    run_id: RunId, principal: Annotated[Principal, Depends(require("runs:cancel"))], s: State, request: Request,
    body: CancelRun | None = None, idempotency_key: IdempotencyKey = None, wait: Wait = None,
) -> JSONResponse:
    """Cancel a run; its pending approvals become ``cancelled``. Answers once it has closed, or as it
    stands after ``wait`` seconds (no worker has taken the cancellation yet: it will)."""
    reason = f"cancelled by {principal.name}" + (f": {body.reason}" if body and body.reason else "")

    async def call() -> RunOutput:
        return await _runs.cancel(await s.temporal(), run_id, reason=reason,
                                  wait=s.config.resolve_wait_seconds if wait is None else wait)

    return await run_once(request, s.db, principal, idempotency_key, call)
