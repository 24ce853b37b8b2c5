"""``continue_run``: a paused run continued with decisions, sent to the run, or through a team's member.

``continue_run`` on a team whose pause is one member's sends the decisions to the member run that owns
them, and hands the member's report to the team (the client side of ``hitl/workflows/direct.py``): one
crossing of the transfer queue fewer than the member's own signal (see bench/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from hitl import errors, ids, limits
from hitl._core import runs
from hitl._wire import (
    DECISION_ROUTE,
    MEMBER_REPORT,
    TEAM_CONTINUE,
    TEAM_DECIDE,
    DecisionRoute,
    MemberProgress,
    MemberReport,
    TeamDecisions,
)
from hitl.decisions import ContinueRunRequest, Decision, refuse_too_deep
from hitl.run import RunOutput, RunRequirement


async def continue_(client: Client, run_id: str, requirements: Sequence[RunRequirement]) -> RunOutput:
    """Send the decisions that resolve the pause; returns when the run next pauses or ends."""
    return await continue_with(client, run_id, runs.decisions_of(requirements))


async def continue_with(client: Client, run_id: str, decisions: Sequence[Decision]) -> RunOutput:
    """:func:`continue_` with the decisions themselves (the service's and the CLI's path)."""
    request = ContinueRunRequest(decisions=list(decisions))
    for d in request.decisions:
        ids.check_requirement_id(d.requirement_id, f"run {run_id}")
        refuse_too_deep(d, f"run {run_id}, requirement {d.requirement_id!r}")
    n = limits.json_bytes(request.model_dump(mode="json"))
    if n > limits.MAX_REQUEST_BYTES:
        raise errors.PayloadTooLargeError(
            f"run {run_id}: these {len(request.decisions)} decisions are {limits.size(n)} together, over hitl's limit "
            f"of {limits.size(limits.MAX_REQUEST_BYTES)} per continue_run (hitl.limits.MAX_REQUEST_BYTES)")
    routed = await continue_through_member(client, run_id, request.decisions)
    if routed is not None:  # a team's member's pause: decided on the member, answered by the team
        return routed
    return await runs._update(client, run_id, "continue_run", request, [d.requirement_id for d in request.decisions])


_AGREES = {"confirm": "confirmed", "reject": "rejected", "provide_input": "input_provided",
           "provide_result": "result_provided"}


async def continue_agreeing(client: Client, run_id: str, decisions: Sequence[Decision]) -> RunOutput:
    """:func:`continue_with`, where decisions this process already applied (:func:`hitl._core.runs.decide`), made the
    same way, are not refused.

    Agno code decides an approval in the database (``update_approval``) and then continues its stale
    ``RunOutput`` with the same decision; hitl's database decision already reached the run. Such a
    decision that agrees with the one recorded (confirmed and confirm, rejected and reject) is
    dropped, the rest are sent, and with none left the run is awaited as :func:`hitl._core.runs.progress` does. One
    that disagrees, or a decision anyone else made first, is refused as before (who decided first
    is told, as the concurrency guarantee says).
    """
    try:
        return await continue_with(client, run_id, decisions)
    except (errors.RequirementAlreadyResolvedError, errors.RunEndedError):
        run = await runs.get(client, run_id)
        recorded = {r.id: r for r in run.requirements}
        rest = []
        for d in decisions:
            req = recorded.get(d.requirement_id)
            if req is None or req.resolution is None:
                rest.append(d)
            elif (runs._applied_here.get((run_id, d.requirement_id)) != d.action or _AGREES.get(d.action) != req.resolution
                  or d.resolved_by not in (None, req.resolved_by)
                  or getattr(d, "arguments", None) not in (None, req.tool_execution.arguments)):
                raise  # decided by someone else, or otherwise: refused, naming who decided
        if len(rest) == len(decisions):
            raise
    if rest:
        return await continue_with(client, run_id, rest)
    return await runs.progress(client, run_id)



async def continue_through_member(client: Client, run_id: str, decisions: Sequence[Decision]) -> RunOutput | None:
    """``continue_run`` on a team whose pause is one member's: the decisions go to that member.

    The team checks them first, as its ``continue_run`` would, without recording anything (the
    ``decision_route`` query, which refuses with the same errors); the member run, which owns the
    requirements, checks them again, records them, runs the tools and answers at its next pause or
    end with its report to the team (``team_continue``); this caller hands the report to the team
    (``member_report``), which answers at its own next pause or end. None when this is not such a
    pause (the team's own requirements, several members, a quorum, a refusal the team records, a
    worker without the route): the caller sends them to the team, as before. See
    ``hitl/workflows/direct.py``.

    Raises:
        The team's refusals, as ``continue_run``; the member's, as ``decide``; RunEndedError naming
        the member run and the requirement when that run has ended or is gone.
    """
    if not decisions or not all(d.requirement_id.startswith(run_id + ".") and "/" in d.requirement_id for d in decisions):
        return None  # not a member's requirement by the team's id: nothing to route (agents' runs end here)
    try:
        route = await client.get_workflow_handle(run_id).query(
            DECISION_ROUTE, ContinueRunRequest(decisions=list(decisions)), result_type=DecisionRoute,
            rpc_timeout=timedelta(seconds=10))
    except (WorkflowQueryFailedError, RPCError):
        return None  # a closed or unknown run, or a worker older than the route: the team's answer says
    if route.refused is not None:
        error = getattr(errors, route.refused_type or "", None)
        raise (error if isinstance(error, type) and issubclass(error, errors.HitlError) else errors.HitlError)(route.refused)
    member = route.member_run_id
    if member is None or len(route.requirement_ids) != len(decisions):
        return None
    moved = [d.model_copy(update={"requirement_id": rid}) for d, rid in zip(decisions, route.requirement_ids, strict=True)]
    sent = TeamDecisions(team_run_id=run_id, decisions=moved)
    try:
        try:
            # The member answers at its next pause or end with its report to the team...
            progress = await runs._update(client, member, TEAM_CONTINUE, sent, route.requirement_ids,
                                           result_type=MemberProgress)
        except errors.HitlError as exc:
            if not _lacks_handler(exc):
                raise
            # ... unless its worker predates team_continue: then as before, and the team hears from the member.
            await runs._update(client, member, TEAM_DECIDE, sent, route.requirement_ids)
            progress = None
    except (errors.RunEndedError, errors.RunNotFoundError) as exc:
        names = ", ".join(repr(d.requirement_id) for d in decisions)
        raise errors.RunEndedError(
            f"run {run_id}: requirement {names} belongs to member run {member}, which "
            f"{'is gone' if isinstance(exc, errors.RunNotFoundError) else 'has ended'} ({exc}); "
            "read the team run (get_run) for where it stands") from None
    except errors.HitlError as exc:
        if _lacks_handler(exc):
            return None  # the member's worker predates team_decide: through the team, as before
        raise
    try:
        if progress is not None:
            try:
                # ... which this caller hands to the team, sooner than the member's own signal would.
                report = MemberReport(progress=progress, after_pause=route.after_pause)
                return await runs._update(client, run_id, MEMBER_REPORT, report, [])
            except errors.HitlError as exc:
                # The team already took the member's signal and moved on, or its worker predates member_report.
                if type(exc) is not errors.InvalidInputError and not _lacks_handler(exc):
                    raise
        return await runs._update(client, run_id, "wait_for_progress", route.after_pause, [])
    except errors.RunEndedError:
        return await runs.get(client, run_id)  # the member's own report got there first, and the team has ended


def _lacks_handler(exc: errors.HitlError) -> bool:
    """The run's worker has no handler by that name (an older hitl): the SDK's refusal says so."""
    return type(exc) is errors.HitlError and "expected but not found" in str(exc)
