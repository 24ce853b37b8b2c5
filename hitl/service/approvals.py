"""``/approvals``: list, count, read, decide and reassign approvals (AgentOS's routes where they exist).

Resolving is the decision itself: it goes through the run's validating update as the caller,
and answers with the run's state after it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter

from hitl import ids
from hitl._core import approvals as _approvals
from hitl._core import runs
from hitl.decisions import ChangeApproval
from hitl.errors import PermissionDeniedError, RequirementNotFoundError
from hitl.identity import Principal
from hitl.run import RunOutput
from hitl.service._state import ServiceState, State
from hitl.service.auth import current_principal, decider
from hitl.service.errors import AUTHENTICATED, problems
from hitl.service.idempotency import IdempotencyKey, run_once
from hitl.service.models import (
    ApprovalDetail,
    ApprovalRecord,
    ApprovalStatus,
    ChangeRequest,
    Count,
    Page,
)
from hitl.store.records import StoredApproval

router = APIRouter(prefix="/approvals", tags=["approvals"], responses=AUTHENTICATED)
RunIdSegment = Annotated[str, Path(min_length=1, max_length=ids.MAX_SEGMENT_CHARS, pattern=ids.SEGMENT_PATTERN,
                                    description=f"The approval's run (a team member's for a member's approval): {ids.RULE}.")]
RequirementIdSegment = Annotated[str, Path(min_length=1, max_length=ids.MAX_SEGMENT_CHARS, pattern=ids.SEGMENT_PATTERN,
                                           description=f"The requirement: {ids.RULE}.")]


async def approval_id_of(run_id: RunIdSegment, requirement_id: RequirementIdSegment) -> str:
    """The approval's id, ``<run_id>/<requirement_id>``: two path segments, each checked (``hitl.ids``)."""
    return f"{run_id}/{requirement_id}"


ApprovalId = Annotated[str, Depends(approval_id_of)]
DECIDING = problems(404, 409, 429, 502, 503)
"""What a route that decides through the run may answer besides the rest (403 and 422 too: refused, does not fit)."""


async def reader(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """Reading approvals needs ``approvals:read`` (all of them) or ``approvals:decide`` (those it may decide)."""
    if not (principal.has("approvals:read") or principal.has("approvals:decide")):
        raise PermissionDeniedError(f"{principal.name} lacks the scope 'approvals:read' or 'approvals:decide'")
    return principal


Reader = Annotated[Principal, Depends(reader)]
Decider = Annotated[Principal, Depends(decider)]


# The body FastAPI would make from the response model, made here in one validation and one dump
# (the route returns its bytes): no Page and PageMeta built in the route only to be validated again.
_PAGE = TypeAdapter(Page[ApprovalRecord])


@router.get("", response_model=Page[ApprovalRecord], summary="List approvals")
async def list_approvals(query: Annotated[_approvals.ApprovalQuery, Query()], principal: Reader, s: State) -> Response:
    """Approvals the caller may see, filtered as ``PostgresDb.get_approvals``; ``approver=me`` keeps
    those the caller may decide. Pages by ``page``/``limit``, or by ``cursor`` (``meta.next_cursor``)."""
    records, total, cursor = await _approvals.listing(s.db, principal, query)
    body = {"data": records, "meta": _approvals.page_meta(query, total, cursor)}
    return Response(_PAGE.dump_json(_PAGE.validate_python(body)), media_type="application/json")


# An exact count stays the body clients already compare, {"count": n}; only an estimate adds "estimated": true.
@router.get("/count", response_model=Count, response_model_exclude_defaults=True, summary="Count approvals")
async def count_approvals(query: Annotated[_approvals.ApprovalQuery, Query()], principal: Reader, s: State) -> Count:
    """How many approvals the caller may see match the filters (``status`` defaults to ``pending``);
    ``"estimated": true`` when the count is PostgreSQL's estimate rather than exact."""
    if query.status is None and "status" not in query.model_fields_set:
        query = query.model_copy(update={"status": "pending"})
    total = await _approvals.count(s.db, principal, query)
    return Count(count=total, estimated=total.estimated)


@router.get("/{run_id}/{requirement_id}/status", response_model=ApprovalStatus, responses=problems(404),
            summary="An approval's status")
async def approval_status(approval_id: ApprovalId, principal: Reader, s: State) -> ApprovalStatus:
    record = await _approvals.get(s.db, principal, approval_id)
    return ApprovalStatus.model_validate(record, from_attributes=True)


@router.post("/{run_id}/{requirement_id}/resolve", response_model=_approvals.ResolveResult, responses=DECIDING,
             summary="Decide an approval")
async def resolve(
    approval_id: ApprovalId, body: _approvals.ResolveRequest, principal: Decider, s: State, request: Request,
    idempotency_key: IdempotencyKey = None,
    wait: Annotated[float | None, Query(ge=0, le=3600, description="Seconds to wait for the run's next pause.")] = None,
) -> JSONResponse:
    """Decide as the caller, through the run: approved (optionally with corrected ``arguments``),
    rejected (with a ``reason``), ``user_input`` or ``external_result``. The answer is the run after
    the decision: paused again, completed... The approval's policy decides who may (403 otherwise,
    recorded on its history as ``refused``); a second decision gets 409 with who decided and when."""
    seconds = s.config.resolve_wait_seconds if wait is None else wait

    async def call() -> _approvals.ResolveResult:
        decided = _approvals.resolve(await s.temporal(), s.db, principal, approval_id, body, wait=seconds, signer=s.signer)
        return await s.throttle.counting(principal.name, decided)

    return await run_once(request, s.db, principal, idempotency_key, call)


@router.post("/{run_id}/{requirement_id}/change", response_model=RunOutput, responses=DECIDING,
             summary="Reassign an approval or extend its deadline")
async def change(
    approval_id: ApprovalId, body: ChangeRequest, principal: Decider, s: State, request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Needs ``admin`` or being one of the approval's current approvers; recorded as changed by the caller."""
    record = await s.throttle.counting(principal.name, _changeable(s, principal, approval_id))
    team = record.team_run_id
    change = ChangeApproval(requirement_id=approval_id if team else record.requirement_id, approvers=body.approvers,
                            extend_by_seconds=body.extend_by_seconds, changed_by=principal.name)
    if s.signer is not None:
        change = s.signer.signed(change, run_id=team or record.run_id, requirement_id=change.requirement_id,
                                 arguments_digest=record.arguments_digest, groups=principal.groups)

    async def call() -> RunOutput:
        return await s.throttle.counting(principal.name, runs.change(await s.temporal(), team or record.run_id, change))

    return await run_once(request, s.db, principal, idempotency_key, call)


async def _changeable(s: ServiceState, principal: Principal, approval_id: str) -> StoredApproval:
    record = await _approvals.get(s.db, principal, approval_id)
    if not principal.has("admin") and not _approvals.is_approver(record, principal):
        raise PermissionDeniedError(f"approval {approval_id!r}: only an admin or a current approver may change it")
    return record


@router.get("/{run_id}/{requirement_id}", response_model=ApprovalDetail, responses=problems(404),
            summary="One approval, with its run and history")
async def get_approval(approval_id: ApprovalId, principal: Reader, s: State) -> ApprovalDetail:
    return await _approvals.detail(s.temporal, s.db, principal, approval_id)


@router.api_route("/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
async def not_an_approval(rest: str) -> None:
    """Anything else under /approvals: an id that is not ``<run_id>/<requirement_id>`` (say ``x/../run-1/req-1``,
    or a slash encoded as %2F) is refused saying so, not a bare "Not Found"."""
    head, _, last = rest.rpartition("/")
    if last in ("status", "resolve", "change") and len(head.split("/")) == 2 and all(map(ids.is_segment, head.split("/"))):
        raise HTTPException(405, f"{last} takes {'GET' if last == 'status' else 'POST'}")
    ids.split_approval_id(rest if last not in ("status", "resolve", "change") else head)
    raise RequirementNotFoundError(f"no approval {rest[:200]!r}")

