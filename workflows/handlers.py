"""The run's message handlers: decisions (updates and signals), approval changes, member reports.

A mixin of the run workflow (``AgentRunWorkflow`` inherits it; Temporal finds handlers on base
classes). Decisions are checked twice: by the update's validator, so a bad one never enters
history, and again when applied, as another caller may have decided in between.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from hitl._wire import MEMBER_PROGRESS, TEAM_DECISION, MemberProgress, RunInput, TeamDecision
    from hitl.decisions import ChangeApproval, Confirm, ContinueRunRequest, Decision, ProvideInput, ProvideResult, Reject
    from hitl.errors import (
        DecisionNotAllowedError,
        HitlError,
        InvalidDecisionError,
        RequirementNotFoundError,
        RunEndedError,
        UnresolvedRequirementsError,
    )
    from hitl.policy import ApprovalPolicy
    from hitl.run import RunOutput, RunRequirement, RunStatus
    import workflows.decisions as decisions
    from workflows.team import MemberRuns, TeamReporter


TEAM_DECISION_PATCH = "hitl-team-decision-signal"


class DecisionHandlers:
    # The run's state, set by AgentRunWorkflow.__init__.
    _run_id: str
    _input: RunInput
    _status: RunStatus
    _requirements: list[RunRequirement]
    _resolved_ids: set[str]
    _pauses: int
    _policy_changes: int
    _remembered: dict[str, dict[str, str | None]]
    _members: MemberRuns
    _team: TeamReporter

    def _record(self, req: RunRequirement, kind: str, **details: Any) -> None:
        raise NotImplementedError

    def _show(self) -> None:
        raise NotImplementedError

    def _output(self) -> RunOutput:
        raise NotImplementedError

    def _check_all(self, items: list[Decision], *, whole_pause: bool) -> list[decisions.Patch]:
        if self._status.is_final:
            raise RunEndedError(f"run {self._run_id} has ended ({self._status.value}); it takes no decisions")
        seen: set[str] = set()
        patches = []
        for d in items:
            req = self._find(d.requirement_id)
            if req.id in seen:  # by the same id, or a member's requirement by both of its ids
                raise InvalidDecisionError(
                    f"run {self._run_id}: two decisions for requirement {d.requirement_id!r} in one call"
                )
            seen.add(req.id)
            try:
                agent_name = req.member_agent_name or self._input.agent_name
                patches.append(decisions.check(agent_name, self._run_id, req, d, self._input.user_id))
            except HitlError as exc:
                exc.decision = d  # type: ignore[attr-defined]  # which attempt to record as refused
                raise
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
                if workflow.patched(TEAM_DECISION_PATCH):
                    self._members.forward(req, TEAM_DECISION, d, wrap=lambda moved: TeamDecision(decision=moved))
                else:  # runs recorded before the team_decision signal
                    self._members.forward(req, d.action, d)
                continue
            details: dict[str, Any] = {"via": via, "resolved_by": p.resolved_by}
            if p.remember:
                self._remembered[req.tool_execution.tool_name] = {
                    "approval_id": f"{self._run_id}/{req.id}", "resolved_by": p.resolved_by}
                details["remember"] = True
            self._record(req, p.resolution, payload=details)

    def _validate(self, items: list[Decision], *, whole_pause: bool) -> None:
        try:
            self._check_all(items, whole_pause=whole_pause)
        except DecisionNotAllowedError:
            return  # accepted, so that the handler can record the refused attempt
        except HitlError as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None

    def _decide_now(self, items: list[Decision], *, whole_pause: bool, via: str) -> None:
        """Check (again: another caller may have decided since validation) and apply, or refuse."""
        try:
            self._apply(items, self._check_all(items, whole_pause=whole_pause), via)
        except HitlError as exc:
            refused = getattr(exc, "decision", None) or (items[0] if len(items) == 1 else None)
            if refused is not None and isinstance(exc, DecisionNotAllowedError):
                target = self._find(refused.requirement_id)  # found: it was checked, and refused
                if target.member_run_id is not None:
                    self._members.forward(target, refused.action, refused)  # the member refuses it and records that
            for r in self._requirements:
                if refused is not None and r.id == refused.requirement_id:
                    # Kept on the approval's history; it changes nothing else.
                    self._record(r, "refused", payload={
                        "action": refused.action, "resolved_by": refused.resolved_by, "reason": str(exc), "via": via})
            raise

    @workflow.update(name="continue_run")
    async def continue_run(self, request: ContinueRunRequest) -> RunOutput:
        """Apply decisions that resolve the pause; return when the run next pauses or ends."""
        pause = self._pauses
        try:
            self._decide_now(request.decisions, whole_pause=True, via="update")
        except HitlError as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None
        if any(r.resolution is None for r in self._all_requirements()):
            return self._output()  # a quorum still short of approvers: the pause goes on
        await workflow.wait_condition(lambda: self._progressed(pause))
        return self._output()

    @continue_run.validator
    def _validate_continue_run(self, request: ContinueRunRequest) -> None:
        self._validate(request.decisions, whole_pause=True)

    @workflow.update(name="decide")
    def decide(self, decision: Decision) -> RunOutput:
        """Apply one decision and return at once (the audit API's update_approval uses it)."""
        try:
            self._decide_now([decision], whole_pause=False, via="update")
        except HitlError as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None
        return self._output()

    @decide.validator
    def _validate_decide(self, decision: Decision) -> None:
        self._validate([decision], whole_pause=False)

    def _check_change(self, change: ChangeApproval) -> tuple[RunRequirement, ApprovalPolicy]:
        """The requirement a change names and its policy after the change, or why it is refused."""
        if self._status.is_final:
            raise RunEndedError(f"run {self._run_id} has ended ({self._status.value})")
        req = self._find(change.requirement_id)
        policy = req.policy or ApprovalPolicy()
        if change.approvers is not None:
            policy = ApprovalPolicy.model_validate({**policy.model_dump(), "approvers": change.approvers})
        return req, policy

    def _change(self, change: ChangeApproval) -> None:
        req, policy = self._check_change(change)
        if req.member_run_id is not None:
            self._members.forward(req, "change_approval", change)  # the member owns it, and reports back
            return
        details: dict[str, Any] = {"changed_by": change.changed_by}
        if change.approvers is not None:
            details["approvers"] = change.approvers
        if change.extend_by_seconds is not None:
            base = req.deadline if req.deadline is not None else workflow.now().timestamp()
            req.deadline = base + change.extend_by_seconds
            details["deadline"] = req.deadline
        req.policy = policy
        self._policy_changes += 1
        self._record(req, "changed", payload=details)

    @workflow.update(name="change_approval")
    def change_approval(self, change: ChangeApproval) -> RunOutput:
        """Reassign a pending approval or extend its deadline; the timers follow."""
        try:
            self._change(change)
        except (HitlError, pydantic.ValidationError) as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None
        return self._output()

    @change_approval.validator
    def _validate_change_approval(self, change: ChangeApproval) -> None:
        try:
            self._check_change(change)
        except (HitlError, pydantic.ValidationError) as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None

    @workflow.signal(name="change_approval")
    def change_approval_signal(self, change: ChangeApproval) -> None:
        try:
            self._change(change)
        except (HitlError, pydantic.ValidationError) as exc:
            workflow.logger.warning("approval change refused: %s", exc)

    @workflow.update(name="wait_for_progress")
    async def wait_for_progress(self, after_pause: int) -> RunOutput:
        """Return once the run pauses for the (after_pause + 1)-th time or ends."""
        await workflow.wait_condition(lambda: self._progressed(after_pause))
        return self._output()

    def _progressed(self, pause: int) -> bool:
        return self._status.is_final or (self._effective_status() == RunStatus.paused and self._pauses > pause)

    @workflow.signal(name=MEMBER_PROGRESS)
    def member_progress(self, progress: MemberProgress) -> None:
        """A member run's requirements changed: a new pause of the team, or a decision or deadline acted."""
        if self._members.report(progress):
            self._pauses += 1
            self._resolved_ids.update(self._members.drop_finished())
        self._show()

    def _signal(self, decision: Decision, via: str = "signal") -> bool:
        """Apply a decision that came by signal; whether it was applied."""
        try:
            self._decide_now([decision], whole_pause=False, via=via)
        except HitlError as exc:
            # A signal has no caller to answer: a duplicate or bad decision is logged and changes nothing.
            workflow.logger.warning("decision refused (%s): %s", via, exc)
            return False
        return True

    @workflow.signal(name=TEAM_DECISION)
    def team_decision(self, forwarded: TeamDecision) -> None:
        """A decision sent on by this (member) run's team, which needs no report of it."""
        if self._signal(forwarded.decision, via="team"):
            self._team.absorb(self._requirements)

    @workflow.signal(name="confirm")
    def confirm(self, decision: Confirm) -> None:
        self._signal(decision)

    @workflow.signal(name="reject")
    def reject(self, decision: Reject) -> None:
        self._signal(decision)

    @workflow.signal(name="provide_input")
    def provide_input(self, decision: ProvideInput) -> None:
        self._signal(decision)

    @workflow.signal(name="provide_result")
    def provide_result(self, decision: ProvideResult) -> None:
        self._signal(decision)

    @workflow.query(name="get_run")
    def get_run(self) -> RunOutput:
        return self._output()

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
            return decisions.find(self._requirements, self._resolved_ids, self._run_id, rid)
        except RequirementNotFoundError:
            members = self._members.requirements
            hits = [r for r in members if r.id == rid] or [r for r in members if r.id.endswith("/" + rid)]
            if len(hits) > 1:
                raise InvalidDecisionError(
                    f"run {self._run_id}: requirement {rid!r} names several members' requirements "
                    f"({', '.join(r.id for r in hits)}); use the team's id") from None
            if not hits:
                raise
            return decisions.find(hits, self._resolved_ids, self._run_id, hits[0].id)
