"""``/runs``: start a run of an agent this service serves, read, continue, cancel and list runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from hitl import _approvals, _listing, _registry, _runs
from hitl.errors import ConfigurationError, PermissionDeniedError, RunNotFoundError
from hitl.identity import Principal
from hitl.run import RunOutput
from hitl.service._state import State
from hitl.service.auth import require
from hitl.service.errors import ERROR_RESPONSES
from hitl.service.idempotency import IdempotencyKey, run_once
from hitl.service.models import CancelRun, ContinueRun, RunFilters, RunPage, StartRun

router = APIRouter(prefix="/runs", tags=["runs"], responses=ERROR_RESPONSES)
RunId = Annotated[str, Path(min_length=1, max_length=1000, description="The run's id (its Temporal workflow id).")]
Wait = Annotated[float | None, Query(ge=0, le=3600, description="Seconds to wait for the run (default HITL_RESOLVE_WAIT_SECONDS).")]


@router.post("", response_model=RunOutput, status_code=201, summary="Start a run")
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
        agent = _registry.get(body.agent)
    except ConfigurationError:
        raise RunNotFoundError(f"agent {body.agent!r} is not served by this service: start it with "
                               "hitl serve --agents <module defining it>") from None

    async def call() -> RunOutput:
        return await agent.arun(body.message, run_id=body.run_id, session_id=body.session_id, user_id=principal.name)

    return await run_once(request, s.db, principal, idempotency_key, call, status_code=201)


@router.get("", response_model=RunPage, summary="List runs")
async def list_runs(
    filters: Annotated[RunFilters, Query()], principal: Annotated[Principal, Depends(require("runs:read"))], s: State,
) -> RunPage:
    """Runs by hitl's search attributes (status, pending tool, agent, team, deadline), newest first."""
    found = await _listing.list_runs(await s.temporal(), **filters.model_dump())
    return RunPage(data=found, meta={"count": len(found), "limit": filters.limit})


@router.get("/{run_id}", response_model=RunOutput, summary="A run as it stands")
async def get_run(run_id: RunId, principal: Annotated[Principal, Depends(require("runs:read"))], s: State) -> RunOutput:
    return await _runs.get(await s.temporal(), run_id)


@router.post("/{run_id}/continue", response_model=RunOutput, summary="Decide a run's pause")
async def continue_run(
    run_id: RunId, body: ContinueRun, principal: Annotated[Principal, Depends(require("approvals:decide"))], s: State,
    request: Request, idempotency_key: IdempotencyKey = None, wait: Wait = None,
) -> JSONResponse:
    """Decisions that, with those already made, resolve the whole pause, each made as the caller
    (a decision naming anyone else in ``resolved_by`` is refused). Answers at the run's next pause or end."""
    decisions = []
    for d in body.decisions:
        if d.resolved_by is not None and d.resolved_by != principal.name:
            raise PermissionDeniedError(
                f"run {run_id}, requirement {d.requirement_id!r}: resolved_by {d.resolved_by[:80]!r} is not the caller; "
                f"decisions are made as the authenticated principal ({principal.name!r})")
        decisions.append(d.model_copy(update={"resolved_by": principal.name}))

    async def call() -> RunOutput:
        client = await s.temporal()
        signed = decisions
        if s.signer is not None:  # over each requirement's arguments, as the run holds them
            run = await _runs.get(client, run_id)
            signed = _runs.signed(s.signer, run_id, decisions, run.requirements, groups=principal.groups)
        run, _ = await _approvals.continue_within(client, run_id, signed, s.config.resolve_wait_seconds if wait is None
                                                  else wait)
        return run

    return await run_once(request, s.db, principal, idempotency_key, call)


@router.post("/{run_id}/cancel", response_model=RunOutput, summary="Cancel a run")
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
