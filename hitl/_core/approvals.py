"""Approvals as a caller sees them: which it may see, the decision a resolve makes, the run after it.

The core under the decision service (and the CLI): no HTTP here. The decider is always the
authenticated principal; who may decide a given approval is that approval's own policy, which
the run checks when the decision reaches it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client

from hitl import ids
from hitl._core import continuing, registry, runs, sessions
from hitl._core import records as _records
from hitl._core.views import ApprovalDetail, ApprovalRecord
from hitl._timestamps import IsoTime
from hitl.decisions import Confirm, Decision, ProvideInput, ProvideResult, Reject, refuse_too_deep, refuse_unsafe
from hitl.errors import (
    ApprovalConflictError,
    ConfigurationError,
    HitlError,
    InvalidDecisionError,
    InvalidInputError,
    PermissionDeniedError,
    RequirementAlreadyResolvedError,
    RequirementNotFoundError,
    RunEndedError,
    TemporalUnavailableError,
    UnresolvedRequirementsError,
)
from hitl.identity import Principal
from hitl.run import RunOutput, RunRequirement
from hitl.security.signing import Signer
from hitl.store import approvals as _store
from hitl.store import counts, queries
from hitl.store.counts import TotalCount
from hitl.store.database import Database
from hitl.store.records import Approval, StoredApproval, TrailEvent

if TYPE_CHECKING:
    from hitl.db.postgres import PostgresDb  # resolve waits for its records (read-your-writes)

__all__ = ["ResolveRequest", "ResolveResult", "ApprovalQuery", "may_see", "may_see_requirement", "is_approver", "may_decide", "decision_for",
           "get", "detail", "answer_schema", "resolve", "listing", "count", "events"]


class ResolveRequest(BaseModel):
    """A decision on one approval. The decider is the caller's identity, never a field of this body."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["approved", "rejected"]
    arguments: dict[str, Any] | None = Field(
        default=None, description="Corrected arguments to run the tool with (a confirmation); checked against the tool's schema.")
    reason: str | None = Field(default=None, max_length=4000, description="Why (told to the model on a rejection).")
    user_input: Any = Field(default=None, description="The fields a person must fill (a user-input approval).")
    external_result: Any = Field(default=None, description="The result of a tool executed elsewhere (an external execution).")
    remember: bool = Field(default=False, description="Approve this tool for the rest of the run.")
    resolved_by: str | None = Field(
        default=None, max_length=256,
        description="Optional; if given it must be the caller's own identity (a decision is always made as the caller).")


class ResolveResult(BaseModel):
    """The decision as the run took it, and the run's state after it."""

    approval_id: str
    run_id: str = Field(description="The run that took the decision: the team run for a team member's approval.")
    decision: str
    resolved_by: str
    waiting: bool = Field(description="True when the run had not paused again or ended within the wait.")
    run: RunOutput


def approvers_of(record: Approval) -> list[str]:
    return list((record.context.get("policy") or {}).get("approvers") or [])


def _names(approvers: list[str], principal: Principal) -> bool:
    return not approvers or any(name in approvers for name in principal.approver_names())


def is_approver(record: Approval, principal: Principal) -> bool:
    """Whether the approval's current approvers name the principal (no approvers: anyone may decide)."""
    return _names(approvers_of(record), principal)


def may_see(record: Approval, principal: Principal) -> bool:
    """The one visibility rule of every route that reveals or decides an approval: ``approvals:read``
    sees every approval; a decider alone sees those it is an approver of. Anything else is answered
    as unknown (404)."""
    return principal.has("approvals:read") or (principal.has("approvals:decide") and is_approver(record, principal))


def may_see_requirement(requirement: RunRequirement, principal: Principal) -> bool:
    """:func:`may_see` for a requirement as its run holds it (the run may keep no audit records)."""
    approvers = list(requirement.policy.approvers) if requirement.policy is not None else []
    return principal.has("approvals:read") or (principal.has("approvals:decide") and _names(approvers, principal))


def may_decide(record: Approval, principal: Principal) -> bool:
    """Whether the principal could decide the approval now, as far as its record tells: pending, a
    current approver, not the run's own requester under separation of duties, not already counted
    toward its quorum. The run checks again and has the last word."""
    policy = record.context.get("policy") or {}
    return (record.status == "pending" and principal.has("approvals:decide") and is_approver(record, principal)
            and not (policy.get("separation_of_duties") and record.user_id == principal.name)
            and principal.name not in (record.context.get("approvals") or []))


def decision_for(record: Approval, request: ResolveRequest, principal: Principal) -> Decision:
    """The run's decision a resolve makes, as the principal.

    Raises:
        PermissionDeniedError: the body names a decider other than the caller.
        InvalidDecisionError: a field that does not fit the approval's kind.
    """
    where = f"approval {record.id!r} ({record.context.get('tool_name')})"
    if request.resolved_by is not None and request.resolved_by != principal.name:
        raise PermissionDeniedError(
            f"{where}: resolved_by {request.resolved_by[:80]!r} is not the caller; a decision is made as the "
            f"authenticated principal ({principal.name!r}), never as a name in the body")
    kind = record.requirement_kind
    extra = {"arguments": request.arguments, "user_input": request.user_input, "external_result": request.external_result}
    allowed = {"confirmation": {"arguments"}, "user_input": {"user_input"}, "external_execution": {"external_result"}}
    if request.status == "rejected":
        allowed = {kind: set()}
    wrong = sorted(k for k, v in extra.items() if v is not None and k not in allowed.get(kind, set()))
    if wrong:
        raise InvalidDecisionError(f"{where} needs {kind}: {', '.join(wrong)} does not apply to "
                                   f"{'a rejection' if request.status == 'rejected' else 'it'}")
    if request.remember and (request.status == "rejected" or kind != "confirmation"):
        raise InvalidDecisionError(f"{where}: only a confirmation can be remembered")
    rid = _requirement_id(record)
    by = principal.name
    if request.status == "rejected":
        return Reject(requirement_id=rid, reason=request.reason, resolved_by=by)
    if kind == "confirmation":
        return Confirm(requirement_id=rid, arguments=request.arguments, remember=request.remember, resolved_by=by)
    if kind == "user_input":
        if request.user_input is None:
            raise InvalidDecisionError(f"{where} needs user_input: the fields a person fills")
        return ProvideInput(requirement_id=rid, value=request.user_input, resolved_by=by)
    if kind == "external_execution":
        if request.external_result is None:
            raise InvalidDecisionError(f"{where} needs external_result: the result of the tool run elsewhere")
        return ProvideResult(requirement_id=rid, result=request.external_result, resolved_by=by)
    raise InvalidDecisionError(f"{where} is a record of a call that needed no decision")


def _target(record: Approval) -> str:
    """The run a decision goes to: a team member's approval is decided through its team run."""
    return record.team_run_id or record.run_id


def _requirement_id(record: Approval) -> str:
    # A team shows a member's requirement under the approval's own id, <member_run_id>/<requirement_id>.
    return record.id if record.team_run_id else record.requirement_id


async def get(db: Database, principal: Principal, approval_id: str) -> StoredApproval:
    """The approval record, if the principal may see it.

    Raises:
        RequirementNotFoundError: unknown, or not visible to the principal (the same answer).
        InvalidInputError: not ``<run_id>/<requirement_id>`` of safe ids (``hitl.ids``).
    """
    ids.split_approval_id(approval_id)  # never an id a URL could have changed on its way here
    record = await _record(db, approval_id)
    if record is None or not may_see(record, principal):
        raise RequirementNotFoundError(f"no approval {approval_id!r}")
    return record


async def detail(temporal: Callable[[], Awaitable[Client]], db: Database, principal: Principal,
                 approval_id: str) -> ApprovalDetail:
    """An approval with what a decider needs (``GET /approvals/{id}``, ``hitl approvals show``): its
    run's status, or why the run could not be asked; the answer it accepts (:func:`answer_schema`),
    policy, deadline, escalation level, who has confirmed, whether the principal may decide it now,
    its history.

    Raises:
        RequirementNotFoundError: unknown, or not visible to the principal.
    """
    record = await get(db, principal, approval_id)
    run_status, problem, requirement = None, None, None
    try:
        run = await runs.get(await temporal(), record.run_id)
        run_status = run.status.value
        requirement = next((r for r in run.requirements if r.id == record.requirement_id), None)
    except HitlError as exc:  # the record is still worth showing
        problem = str(exc)
    context = record.context
    return ApprovalDetail.of(
        record, run_status=run_status, run_status_error=problem, answer_schema=answer_schema(record, requirement),
        policy=context.get("policy"), deadline=context.get("deadline"),
        escalation_level=requirement.escalation_level if requirement is not None else 0,
        may_decide=may_decide(record, principal) and run_status in (None, "paused"),
        approvals=list(context.get("approvals") or []), events=[e.model_dump() for e in await events(db, approval_id)])


def answer_schema(record: Approval, requirement: RunRequirement | None) -> dict[str, Any]:
    """The JSON Schema of the resolve body this approval takes: the tool's argument schema when this
    process knows the agent (``hitl serve --agents``), the fields a person fills for user input."""
    kind = record.requirement_kind
    properties: dict[str, Any] = {"status": {"enum": ["approved", "rejected"]}, "reason": {"type": "string", "maxLength": 4000}}
    if kind == "confirmation":
        properties["arguments"] = _tool_schema(record) or {"type": "object"}
        properties["remember"] = {"type": "boolean"}
    elif kind == "user_input":
        fields: dict[str, dict[str, Any]]
        if requirement is not None:  # the fields still asked, with their types
            fields = {f.name: {"type": _JSON_TYPES.get(f.type_label, {}), "description": f.description or f.name}
                      for f in requirement.user_input_schema or [] if f.value is None}
        else:  # the run could not be asked: every field the tool leaves to a person
            fields = {name: {} for name in record.context.get("user_input_fields") or []}
        properties["user_input"] = {"type": "object", "required": list(fields), "additionalProperties": False,
                                    "properties": {k: {key: v for key, v in f.items() if v} for k, f in fields.items()}}
    elif kind == "external_execution":
        properties["external_result"] = {"description": "The result of the tool executed elsewhere (any JSON)."}
    return {"type": "object", "required": ["status"], "additionalProperties": False, "properties": properties}


_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "list": "array", "dict": "object"}


def _tool_schema(record: Approval) -> dict[str, Any] | None:
    name = record.context.get("tool_name")
    try:
        tool = registry.get(record.agent_name).tools.get(name) if isinstance(name, str) else None
    except ConfigurationError:
        return None
    return tool.args_model.model_json_schema() if tool is not None else None


async def _record(db: Database, approval_id: str) -> StoredApproval | None:
    return await _store.arecord(db, approval_id)


async def events(db: Database, approval_id: str) -> list[TrailEvent]:
    """The approval's trail, oldest first (``at`` in epoch seconds)."""
    return await _store.aevents(db, approval_id)


def _already(record: Approval, how: str | None = None) -> ApprovalConflictError:
    by = f" by {record.resolved_by}" if record.resolved_by else ""
    when = f" at {datetime.fromtimestamp(record.resolved_at, UTC).isoformat()}" if record.resolved_at else ""
    return ApprovalConflictError(
        f"approval {record.id!r} was already decided: {how or record.status + by + when}",
        status=record.status, resolved_by=record.resolved_by, resolved_at=record.resolved_at)


async def _conflict(client: Client, db: Database, record: Approval, exc: HitlError) -> ApprovalConflictError:
    """Who decided first, and when: from the run while it holds the requirement, else from the trail."""
    try:
        run = await runs.get(client, _target(record))
        mine = next((r for r in run.requirements if r.id == _requirement_id(record) and r.resolution), None)
    except HitlError:
        mine = None
    if mine is not None:
        status = {"rejected": "rejected", "expired": "expired"}.get(mine.resolution or "", "approved")
        return ApprovalConflictError(f"approval {record.id!r} was already decided: {exc}", status=status,
                                     resolved_by=mine.resolved_by, resolved_at=mine.resolved_at)
    latest = await _record(db, record.id) or record
    return _already(latest, str(exc)) if latest.status != "pending" else ApprovalConflictError(
        f"approval {record.id!r} was already decided: {exc}")


async def resolve(
    client: Client, db: PostgresDb, principal: Principal, approval_id: str, request: ResolveRequest, *, wait: float,
    signer: Signer | None = None,
) -> ResolveResult:
    """Decide an approval as ``principal`` through its run's validating update.

    When the decision completes the pause, the answer comes once the run has paused again or
    ended (up to ``wait`` seconds); otherwise (other approvals or a quorum still waiting) at once.

    ``signer`` signs the decision (strict workers take only signed ones).

    Raises:
        RequirementNotFoundError: unknown or not visible.
        ApprovalConflictError: decided already (who and when attached); also when its run has ended.
        PermissionDeniedError: a body naming someone else; DecisionNotAllowedError (a kind of it)
            when the run's policy refuses the principal (the run records the attempt as ``refused``).
        InvalidDecisionError, PayloadTooLargeError: the decision does not fit.
    """
    record = await get(db, principal, approval_id)
    decision = decision_for(record, request, principal)
    refuse_too_deep(decision, f"approval {approval_id!r}")
    refuse_unsafe(decision, f"approval {approval_id!r}")
    if record.status != "pending":
        raise _already(record)
    run_id = _target(record)
    if signer is not None:  # proof for strict workers: this principal (and its groups) decided this
        decision = signer.signed(decision, run_id=run_id, requirement_id=decision.requirement_id,
                                 arguments_digest=record.arguments_digest, groups=principal.groups)
    waiting = False
    try:
        if wait > 0:
            try:  # completes the pause: one round trip, answered at the run's next pause
                output, waiting = await continue_within(client, run_id, [decision], wait)
            except UnresolvedRequirementsError:  # refused by the validator: nothing entered history
                output = await runs.decide(client, run_id, decision)
        else:
            output = await runs.decide(client, run_id, decision)
    except (RequirementAlreadyResolvedError, RunEndedError) as exc:
        raise await _conflict(client, db, record, exc) from None
    if not waiting:  # the record says what the answer says (read-your-writes)
        await _records.settled_in(db, output, [decision])
        await sessions.seen(output)  # a completed run joins its session's history
    return ResolveResult(approval_id=approval_id, run_id=run_id, decision=decision.action, resolved_by=principal.name,
                         waiting=waiting, run=output)


async def continue_within(client: Client, run_id: str, decisions: list[Decision], wait: float) -> tuple[RunOutput, bool]:
    """``continue_run``, answered within ``wait`` seconds: (the run, whether it was still going on then).

    Raises:
        TemporalUnavailableError: no answer in time and the run does not show the decisions (no
            worker serves it now): they may still be applied when one does.
        The run's own refusals, as ``continue_run``.
    """
    call = asyncio.ensure_future(continuing.continue_with(client, run_id, decisions))
    done, _ = await asyncio.wait({call}, timeout=wait)
    if done:
        return call.result(), False
    call.cancel()
    run = await runs.get(client, run_id)
    decided = {r.id for r in run.requirements if r.resolution is not None or r.approvals}
    if all(d.requirement_id in decided for d in decisions):
        return run, True  # applied; the run has not paused again yet (a long tool, a slow model)
    why = f" ({run.waiting_for_worker})" if run.waiting_for_worker else ""
    raise TemporalUnavailableError(
        f"run {run_id}: no answer within {wait:g} s{why}; the decision may still be applied when a worker takes "
        "the run: read it before sending the decision again (one already applied is refused, never applied twice)")


class ApprovalQuery(BaseModel):
    """Filters, order and paging of ``GET /approvals`` (the names of ``PostgresDb.get_approvals``)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["pending", "approved", "rejected", "expired", "cancelled"] | None = None
    run_id: str | None = Field(default=None, max_length=1000)
    team_run_id: str | None = Field(default=None, max_length=1000)
    session_id: str | None = Field(default=None, max_length=1000)
    user_id: str | None = Field(default=None, max_length=1000)
    agent_name: str | None = Field(default=None, max_length=1000)
    tool_name: str | None = Field(default=None, max_length=1000)
    resolved_by: str | None = Field(default=None, max_length=1000)
    approval_type: Literal["required", "audit", "none"] | None = None
    pause_type: Literal["confirmation", "user_input", "external_execution"] | None = None
    created_at_gte: IsoTime | None = None
    created_at_lte: IsoTime | None = None
    month: str | None = Field(default=None, pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM (UTC).")
    approver: Literal["me"] | None = Field(default=None, description="`me`: only approvals the caller may decide.")
    sort_by: Literal["created_at", "deadline", "age"] = Field(
        default="created_at", description="`deadline`: soonest first by default; `age`: oldest first.")
    sort_order: Literal["asc", "desc"] | None = None
    page: int = Field(default=1, ge=1, le=10**6)
    limit: int = Field(default=20, ge=1, le=1000)
    cursor: str | None = Field(default=None, max_length=2000, description="`meta.next_cursor` of the page before.")

    def order(self) -> tuple[str, str]:
        if self.sort_by == "age":
            return "created_at", self.sort_order or "asc"
        return self.sort_by, self.sort_order or ("asc" if self.sort_by == "deadline" else "desc")

    def filters(self) -> dict[str, Any]:
        skip = {"status", "approver", "sort_by", "sort_order", "page", "limit", "cursor"}
        return {k: v for k, v in self.model_dump().items() if k not in skip and v is not None}


def _encode_cursor(sort_by: str, sort_order: str, value: Any, approval_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([sort_by, sort_order, value, approval_id]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort_by: str, sort_order: str) -> tuple[Any, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        by, order, value, approval_id = data
        if (by, order) != (sort_by, sort_order) or not isinstance(approval_id, str):
            raise ValueError
        if sort_by == "created_at":
            datetime.fromisoformat(value).astimezone(UTC)  # raises on anything but the ISO time this listing sent
        elif not isinstance(value, (int, float)) or isinstance(value, bool) or not abs(value) < 1e12:
            raise ValueError  # a deadline is epoch seconds: a 400-digit number (or inf, nan) is no cursor of ours
    except (ValueError, TypeError, OverflowError):
        raise InvalidInputError(f"cursor {cursor[:40]!r}: not a cursor of this listing (same sort_by and sort_order)") from None
    return value, approval_id


def _visible(principal: Principal, query: ApprovalQuery) -> list[_store.Condition]:
    """The condition keeping approvals the principal may see (only a reader sees all)."""
    if query.approver == "me" or not principal.has("approvals:read"):
        return [queries.approver_among(principal.approver_names())]
    return []


async def count(db: Database, principal: Principal, query: ApprovalQuery) -> TotalCount:
    """How many match: exact, or PostgreSQL's estimate with ``estimated`` set (see ``hitl.store.counts``)."""
    return await db.acount(counts.plan(db.approvals_table, query.status, query.filters(), _visible(principal, query),
                                         undecided_audit=True))


async def listing(db: Database, principal: Principal,
                  query: ApprovalQuery) -> tuple[list[ApprovalRecord], TotalCount, str | None]:
    """One page of the approvals the principal may see, each with its escalation level and whether the
    principal may decide it: (records, how many match, the next page's cursor)."""
    sort_by, sort_order = query.order()
    after = _decode_cursor(query.cursor, sort_by, sort_order) if query.cursor else None
    offset = 0 if query.cursor else (query.page - 1) * query.limit
    # The inbox lists audit approvals still waiting too: they are decided there (hitl.store.queries).
    listed, total = await _store.inbox_page(db, query.status, query.filters(), _visible(principal, query),
                                            sort_by=sort_by, sort_order=sort_order, after=after,
                                            limit=query.limit + 1, offset=offset)
    more = len(listed) > query.limit
    listed = listed[:query.limit]
    cursor = _encode_cursor(sort_by, sort_order, listed[-1].key, listed[-1].record.id) if more and listed else None
    return [ApprovalRecord.of(r.record, escalation_level=r.escalation_level, may_decide=may_decide(r.record, principal))
            for r in listed], total, cursor


def page_meta(query: ApprovalQuery, total: TotalCount, cursor: str | None) -> dict[str, Any]:
    """A listing's ``meta``, as the service and the CLI show it beside the page."""
    return {"page": query.page if not query.cursor else 0, "limit": query.limit, "total_count": total,
            "total_pages": -(-total // query.limit), "next_cursor": cursor,
            "total_count_estimated": total.estimated}
