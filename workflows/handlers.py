"""The run's message handlers: decisions (updates and signals), approval changes, member reports.

A mixin of the run workflow (``AgentRunWorkflow`` inherits it; Temporal finds handlers on base
classes). Decisions are checked twice: by the update's validator, so a bad one never enters
history, and again when applied, as another caller may have decided in between.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

import hitl.workflows.decisions as decisions
import hitl.workflows.generation as generation
import hitl.workflows.refusals as refusals
from hitl import ids, limits
from hitl._wire import MEMBER_PROGRESS, TEAM_DECISION, McpToolSpec, MemberProgress, RunInput, TeamDecision
from hitl.decisions import (
    Confirm,
    ContinueRunRequest,
    Decision,
    ProvideInput,
    ProvideResult,
    Reject,
    refuse_unsafe,
)
from hitl.errors import (
    DecisionNotAllowedError,
    HitlError,
    InvalidDecisionError,
    InvalidInputError,
    PayloadTooLargeError,
    RequirementAlreadyResolvedError,
    RequirementNotFoundError,
    RunEndedError,
    UnresolvedRequirementsError,
)
from hitl.run import RunOutput, RunRequirement, RunStatus
from hitl.workflows.changes import ApprovalChanges
from hitl.workflows.direct import DirectDecisions
from hitl.workflows.payloads import decode, refusal
from hitl.workflows.signatures import Signatures
from hitl.workflows.team import MemberRuns, TeamReporter
from hitl.workflows.verdicts import Verdicts

TEAM_DECISION_PATCH = "hitl-team-decision-signal"


class DecisionHandlers(ApprovalChanges, DirectDecisions):
    # The run's state, set by AgentRunWorkflow.__init__.
    _run_id: str
    _input: RunInput
    _mcp_tools: list[McpToolSpec] | None
    _status: RunStatus
    _requirements: list[RunRequirement]
    _resolved: dict[str, str]
    """Requirements of earlier pauses: id -> how each was decided (``confirmed by alice``)."""
    _pauses: int
    _policy_changes: int
    _remembered: dict[str, dict[str, str | None]]
    _members: MemberRuns
    _team: TeamReporter
    _verdicts: Verdicts
    _signatures: Signatures
    _refusals: refusals.Refusals

    def _record(self, req: RunRequirement, kind: str, **details: Any) -> None:
        raise NotImplementedError

    def _show(self) -> None:
        raise NotImplementedError

    def _output(self) -> RunOutput:
        raise NotImplementedError

    def _check_all(self, items: list[Decision], *, whole_pause: bool, lenient: bool = False) -> list[decisions.Patch]:
        if self._status.is_final:
            for d in items:  # a caller that lost a race to a run that has since ended: say who won
                try:
                    self._find(d.requirement_id)
                except RequirementAlreadyResolvedError as exc:
                    raise RequirementAlreadyResolvedError(f"{exc}; the run has since ended ({self._status.value})") from None
                except HitlError:
                    pass
            raise RunEndedError(f"run {self._run_id} has ended ({self._status.value}); it takes no decisions")
        seen: set[str] = set()
        patches = []
        added = 0
        now = workflow.now().timestamp()
        for d in items:
            req = self._find(d.requirement_id)
            if req.id in seen:  # by the same id, or a member's requirement by both of its ids
                raise InvalidDecisionError(
                    f"run {self._run_id}: two decisions for requirement {d.requirement_id!r} in one call"
                )
            seen.add(req.id)
            try:
                # Before the policy: an unstorable or oversized decision must never reach history.
                where = f"run {self._run_id}, requirement {req.id!r} ({req.tool_execution.tool_name})"
                refuse_unsafe(d, where)
                # Strict mode: a signature by a trusted key proves who decided (and their groups).
                groups = [] if lenient else self._signatures.check_decision(where, req, d, now)
                agent_name = req.member_agent_name or self._input.agent_name
                patches.append(decisions.check(agent_name, self._run_id, req, d, self._input.user_id, lenient=lenient,
                                               groups=groups, reserved_names=generation.current(),
                                               mcp_tools=None if req.member_agent_name else self._mcp_tools))
            except HitlError as exc:
                exc.decision = d  # type: ignore[attr-defined]  # which attempt to record as refused
                raise
            added += limits.json_bytes(d.model_dump(mode="json"))
        if added:
            # What every caller reads back (the RunOutput) stays far below Temporal's payload limit.
            now = limits.json_bytes(self._output().model_dump(mode="json"))
            if now + added > limits.MAX_OUTPUT_BYTES:
                raise PayloadTooLargeError(
                    f"run {self._run_id}: these decisions ({limits.size(added)}) would grow the run's output to "
                    f"{limits.size(now + added)}, over hitl's limit of {limits.size(limits.MAX_OUTPUT_BYTES)} "
                    "(hitl.limits.MAX_OUTPUT_BYTES); send large results by reference (a URL, an id)")
        if whole_pause:
            left = [r for r in self._all_requirements() if r.resolution is None and r.id not in seen]
            if left:
                names = ", ".join(f"{r.id} ({r.tool_execution.tool_name})" for r in left)
                raise UnresolvedRequirementsError(f"run {self._run_id}: requirements left without a decision: {names}")
            if not items and self._effective_status() != RunStatus.paused:
                raise UnresolvedRequirementsError(f"run {self._run_id} is not paused; there is nothing to continue")
        return patches

    def _apply(self, items: list[Decision], patches: list[decisions.Patch], via: str) -> None:
        now = int(workflow.now().timestamp())
        by_id = {r.id: r for r in self._all_requirements()}
        for d, p in zip(items, patches, strict=True):
            req = by_id[p.requirement_id]
            decisions.apply(req, p, now)
            if req.member_run_id is not None:
                # The member owns it: it records the decision, runs the tool and reports back.
                if generation.patched(TEAM_DECISION_PATCH):
                    self._members.forward(
                        req, TEAM_DECISION, d, wrap=lambda moved: TeamDecision(decision=moved, team_run_id=self._run_id))
                else:  # runs recorded before the team_decision signal
                    self._members.forward(req, d.action, d)
                continue
            details: dict[str, Any] = {"via": via, "resolved_by": p.resolved_by}
            if d.signature is not None:  # kept on the approval's history: hitl audit verify checks it
                details["signature"] = d.signature
            if p.remember:
                self._remembered[req.tool_execution.tool_name] = {
                    "approval_id": f"{self._run_id}/{req.id}", "resolved_by": p.resolved_by}
                details["remember"] = True
            self._record(req, p.resolution, payload=details)

    def _validate(self, items: list[Decision], *, whole_pause: bool) -> None:
        # Validators do not run on replay: what they newly refuse never entered any history, so needs no patch.
        try:
            for d in items:
                ids.check_requirement_id(d.requirement_id, f"run {self._run_id}")
            self._check_all(items, whole_pause=whole_pause)
        except DecisionNotAllowedError as exc:
            tried = getattr(exc, "decision", None)
            target = self._find(tried.requirement_id) if tried is not None else None
            if tried is None or target is None or not self._refusals.spent(target.id, tried.resolved_by):
                return  # accepted, so that the handler can record the refused attempt
            raise refusal(DecisionNotAllowedError(
                f"{exc} ({refusals.KEPT} refused attempts by {tried.resolved_by or 'an unnamed decider'} are already on "
                "this approval's history; this one is refused without being recorded)")) from None
        except HitlError as exc:
            raise refusal(exc) from None

    def _decide_now(self, items: list[Decision], *, whole_pause: bool, via: str) -> None:
        """Check (again: another caller may have decided since validation) and apply, or refuse.

        The verdict is recorded in history (``verdicts.py``), so a replay after a redeploy that
        changed a tool's schema or the approvers' groups reaches the verdict the run reached.
        """
        verdict = self._verdicts.replayed(len(items))
        try:
            if verdict is not None and verdict.refused is not None:
                raise verdict.refusal(self._run_id, items)
            patches = self._check_all(items, whole_pause=whole_pause, lenient=verdict is not None)
            self._verdicts.accepted()
            self._apply(items, patches, via)
        except HitlError as exc:
            refused = getattr(exc, "decision", None) or (items[0] if len(items) == 1 else None)
            if verdict is None:
                self._verdicts.refused(exc, items.index(refused) if refused in items else None)
            if refused is not None:
                self._keep_refused(refused, exc, via)
            raise

    def _keep_refused(self, refused: Decision, exc: HitlError, via: str) -> None:
        """Keep a refused attempt on its approval's history (a member's: the member does), a few per decider."""
        # Found when not allowed: it was checked, and refused.
        member = self._find(refused.requirement_id) if isinstance(exc, DecisionNotAllowedError) else None
        if member is not None and member.member_run_id is None:
            member = None
        own = next((r for r in self._requirements if r.id == refused.requirement_id), None)
        target = member or own
        if target is None or not self._refusals.keep(target.id, refused.resolved_by):
            return
        if member is not None:
            self._members.forward(member, refused.action, refused)  # the member refuses it and records that
        if own is not None:
            # Kept on the approval's history; it changes nothing else. What the caller sent may
            # be what was refused (a NUL in resolved_by): only storable text goes on the trail.
            by = limits.storable(refused.resolved_by)[:256] if refused.resolved_by is not None else None
            self._record(own, "refused", payload={
                "action": refused.action, "resolved_by": by, "reason": limits.storable(str(exc))[:2000],
                "via": via, **({"signed": True} if refused.signature is not None else {})})

    # Every handler takes RawValue and decodes it strictly (workflows/payloads.py): a payload of
    # another encoding or shape is refused, never allowed to fail the workflow task.
    @workflow.update(name="continue_run")
    async def continue_run(self, raw: RawValue) -> RunOutput:
        """Apply decisions that resolve the pause; return when the run next pauses or ends."""
        pause = self._pauses
        try:
            request = self._decode(raw, ContinueRunRequest, "continue_run")
            self._decide_now(request.decisions, whole_pause=True, via="update")
        except HitlError as exc:
            raise refusal(exc) from None
        if any(r.resolution is None for r in self._all_requirements()):
            return self._output()  # a quorum still short of approvers: the pause goes on
        await workflow.wait_condition(lambda: self._progressed(pause))
        return self._output()

    @continue_run.validator
    def _validate_continue_run(self, raw: RawValue) -> None:
        try:
            request = self._decode(raw, ContinueRunRequest, "continue_run")
        except HitlError as exc:
            raise refusal(exc) from None
        self._validate(request.decisions, whole_pause=True)

    @workflow.update(name="decide")
    def decide(self, raw: RawValue) -> RunOutput:
        """Apply one decision and return at once (the audit API's update_approval uses it)."""
        try:
            decision = self._decode(raw, Decision, "decide", limits.MAX_DECISION_BYTES + 1024)
            self._decide_now([decision], whole_pause=False, via="update")
        except HitlError as exc:
            raise refusal(exc) from None
        return self._output()

    @decide.validator
    def _validate_decide(self, raw: RawValue) -> None:
        try:
            decision = self._decode(raw, Decision, "decide", limits.MAX_DECISION_BYTES + 1024)
        except HitlError as exc:
            raise refusal(exc) from None
        self._validate([decision], whole_pause=False)

    def _decode(self, raw: RawValue, shape: Any, what: str, max_bytes: int = limits.MAX_REQUEST_BYTES) -> Any:
        return decode(raw, shape, f"run {self._run_id}: {what}", max_bytes)

    @workflow.update(name="wait_for_progress")
    async def wait_for_progress(self, raw: RawValue) -> RunOutput:
        """Return once the run pauses for the (after_pause + 1)-th time or ends."""
        try:
            after_pause = self._decode(raw, int, "wait_for_progress", 64)
        except HitlError as exc:
            raise refusal(exc) from None
        await workflow.wait_condition(lambda: self._progressed(after_pause))
        return self._output()

    def _progressed(self, pause: int) -> bool:
        return self._status.is_final or (self._effective_status() == RunStatus.paused and self._pauses > pause)

    @workflow.signal(name=MEMBER_PROGRESS)
    def member_progress(self, raw: RawValue) -> None:
        """A member run's requirements changed: a new pause of the team, or a decision or deadline acted."""
        try:
            progress = self._decode(raw, MemberProgress, MEMBER_PROGRESS, 4 * limits.MAX_OUTPUT_BYTES)
        except HitlError as exc:
            workflow.logger.warning("member report refused: %s", exc)
            return
        self._take_report(progress)

    def _take_report(self, progress: MemberProgress) -> None:
        """A member's report, by its signal or handed on by a caller (``member_report``)."""
        if self._members.report(progress):
            self._pauses += 1
            self._resolve_earlier(self._members.drop_finished())
        self._show()

    def _resolve_earlier(self, done: list[RunRequirement]) -> None:
        """Requirements of a pause that is over: kept by id, with how each was decided."""
        for r in done:
            self._resolved[r.id] = decisions.summary(r) if r.resolution is not None else ""

    def _signal(self, raw: RawValue, shape: Any, via: str = "signal") -> bool:
        """Apply a decision that came by signal; whether it was applied."""
        try:
            decision = self._decode(raw, shape, f"{via} signal", limits.MAX_DECISION_BYTES + 1024)
            if isinstance(decision, TeamDecision):
                decision = self._from_team(decision)
            self._decide_now([decision], whole_pause=False, via=via)
        except HitlError as exc:
            # A signal has no caller to answer: a duplicate or bad decision is logged and changes nothing.
            workflow.logger.warning("decision refused (%s): %s", via, exc)
            return False
        return True

    def _from_team(self, forwarded: TeamDecision) -> Decision:
        """A decision its team sent on: only a team's member run takes one, and only from its team."""
        team = self._input.team_run_id
        if team is None:
            raise InvalidInputError(f"run {self._run_id} is not a team member's run; it takes no team_decision")
        if forwarded.team_run_id is not None and forwarded.team_run_id != team:
            raise InvalidInputError(
                f"run {self._run_id} works for team run {team}, not {forwarded.team_run_id}; team_decision refused")
        return forwarded.decision

    @workflow.signal(name=TEAM_DECISION)
    def team_decision(self, raw: RawValue) -> None:
        """A decision sent on by this (member) run's team, which needs no report of it."""
        if self._signal(raw, TeamDecision, via="team"):
            self._team.absorb(self._requirements)

    @workflow.signal(name="confirm")
    def confirm(self, raw: RawValue) -> None:
        self._signal(raw, Confirm)

    @workflow.signal(name="reject")
    def reject(self, raw: RawValue) -> None:
        self._signal(raw, Reject)

    @workflow.signal(name="provide_input")
    def provide_input(self, raw: RawValue) -> None:
        self._signal(raw, ProvideInput)

    @workflow.signal(name="provide_result")
    def provide_result(self, raw: RawValue) -> None:
        self._signal(raw, ProvideResult)

    @workflow.query(name="get_run")
    def get_run(self) -> RunOutput:
        return self._output()

    @workflow.query(name="resolution_of")
    def resolution_of(self, raw: RawValue) -> str | None:
        """How a requirement was decided (``confirmed by alice``), None while pending; for a caller that lost a race."""
        rid = self._decode(raw, str, "resolution_of", 4096)
        for r in self._all_requirements():
            if r.id == rid or r.id.endswith("/" + rid):
                return decisions.summary(r) if r.resolution is not None else None
        if rid in self._resolved:
            return self._resolved[rid] or "resolved in an earlier pause"
        raise RequirementNotFoundError(f"run {self._run_id} has no requirement {rid!r}")

    # ----------------------------------------------------------------------------- what is pending
    def _all_requirements(self) -> list[RunRequirement]:
        """This run's requirements, then (on a team run) those of its members working now."""
        return self._requirements + self._members.requirements if self._members.views else self._requirements

    def _effective_status(self) -> RunStatus:
        """A team run is paused while any member waits for a decision."""
        if self._status == RunStatus.running and any(r.resolution is None for r in self._members.requirements):
            return RunStatus.paused
        return self._status

    def _find(self, rid: str) -> RunRequirement:
        """The requirement a decision names: this run's, or a member's by the team's id or its own."""
        try:
            return decisions.find(self._requirements, self._resolved, self._run_id, rid)
        except RequirementNotFoundError:
            members = self._members.requirements
            hits = [r for r in members if r.id == rid] or [r for r in members if r.id.endswith("/" + rid)]
            if len(hits) > 1:
                raise InvalidDecisionError(
                    f"run {self._run_id}: requirement {rid!r} names several members' requirements "
                    f"({', '.join(r.id for r in hits)}); use the team's id") from None
            if not hits:
                raise
            return decisions.find(hits, self._resolved, self._run_id, hits[0].id)
