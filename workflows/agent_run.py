"""The run workflow: one per agent run, its workflow id is the run id.

Model calls and idempotent tools are local activities: the resume path (an update, a tool, a
model call, the next pause) then completes without a round trip through the server's task
queues. A tool marked ``idempotent=False`` runs as a remote activity with a single attempt, so a
worker that dies after it started can never make it run again unseen: its timeout pauses the run
for a person instead.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from hitl._wire import (
        CALL_MODEL,
        MEMBER_PROGRESS,
        RUN_TOOL,
        WORKFLOW_NAME,
        CarriedState,
        ModelRequest,
        ModelTurn,
        MemberProgress,
        PendingCall,
        RunInput,
        ToolCallPlan,
        ToolRunRequest,
        ToolRunResult,
    )
    from hitl.decisions import (
        ChangeApproval,
        Confirm,
        ContinueRunRequest,
        Decision,
        ProvideInput,
        ProvideResult,
        Reject,
    )
    from hitl.policy import ApprovalPolicy
    from hitl.errors import (
        DecisionNotAllowedError,
        HitlError,
        InvalidDecisionError,
        RequirementNotFoundError,
        RunEndedError,
        UnresolvedRequirementsError,
    )
    from hitl.run import RunOutput, RunRequirement, RunStatus, ToolExecution
    from workflows import deadlines, decisions
    from workflows.outbox import AuditOutbox, NoticeQueue
    from workflows.team import MemberRuns
    from workflows.visibility import PATCH, SearchAttributes

MEMBER_OUTCOME_PATCH = "hitl-member-outcome"
MODEL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=8,
    non_retryable_error_types=["ModelRequestError", "ConfigurationError"],
)


@workflow.defn(name=WORKFLOW_NAME, failure_exception_types=[HitlError, pydantic.ValidationError])
class AgentRunWorkflow:
    @workflow.init
    def __init__(self, inp: RunInput) -> None:
        self._input = inp
        self._run_id = workflow.info().workflow_id
        carried = inp.carried or CarriedState(messages=[{"role": "user", "content": inp.message or ""}])
        self._messages = list(carried.messages)
        self._calls = list(carried.calls)
        self._requirements = list(carried.requirements)
        self._resolved_ids = set(carried.resolved_ids)
        self._pauses = carried.pauses
        self._turn = carried.turn
        self._status = RunStatus.paused if carried.paused else RunStatus.running
        self._content: str | None = None
        self._error: str | None = None
        self._unsealed_tools = False
        self._cancel_by_policy: str | None = None
        self._policy_changes = 0
        self._remembered = dict(carried.remembered)
        self._audit = AuditOutbox(self._run_id, inp, carried.outbox, carried.audit_seq)
        self._notices = NoticeQueue(inp, carried.notices)
        self._search = SearchAttributes(inp)
        self._members = MemberRuns(self._run_id, inp)
        self._reported = carried.reported
        self._last_report: list[dict[str, Any]] | None = None
        self._reports_in_flight = 0
        self._reported_end = False

    # ----------------------------------------------------------------------------- main loop
    @workflow.run
    async def run(self, inp: RunInput) -> RunOutput:
        if inp.audit:
            self._mirror_task = asyncio.create_task(self._audit.mirror_forever())
        if inp.notify:
            self._notify_task = asyncio.create_task(self._notices.send_forever())
        self._show()
        try:
            while True:
                if not self._calls:
                    turn = await self._call_model()
                    self._messages.append(turn.assistant_message)
                    if not turn.tool_calls:
                        self._content = turn.content
                        self._status = RunStatus.completed
                        break
                    self._calls = [self._start_call(plan) for plan in turn.tool_calls]
                await self._settle_calls()
                if self._cancel_by_policy is not None:
                    self._status, self._content = RunStatus.cancelled, self._cancel_by_policy
                    break
                self._messages.extend(
                    {"role": "tool", "tool_call_id": c.plan.tool_call_id, "content": c.output or ""} for c in self._calls
                )
                self._calls = []
                self._turn += 1
                self._resolved_ids.update(self._members.finish_turn())
                if workflow.all_handlers_finished():
                    # Not while a continue_run waits for the next pause: it would lose its answer.
                    await self._continue_as_new_if_due()
        except asyncio.CancelledError:
            self._status = RunStatus.cancelled
            for r in self._requirements:
                if r.resolution is None:
                    self._record(r, "cancelled", status="cancelled")
            self._show()
            await self._quiesce()
            raise
        except _ACTIVITY_FAILURES as exc:
            self._status = RunStatus.error
            self._error = _cause_message(exc)
            self._show()
            await self._quiesce()
            raise ApplicationError(
                f"run {self._run_id} failed: {self._error}", type=_cause_type(exc), non_retryable=True
            ) from None
        self._show()
        await self._quiesce()
        return self._output()

    def _show(self) -> None:
        """Keep the search attributes, and a member run's team, up to date."""
        self._search.publish(self._effective_status(), self._all_requirements())
        if self._input.team_run_id is not None:
            self._report_to_team(self._input.team_run_id)

    def _report_to_team(self, team_run_id: str) -> None:
        now = [r.model_dump() for r in self._requirements]
        # The last report, with the member's answer, is newer than histories recorded without it.
        ended = self._status.is_final and not self._reported_end and workflow.patched(MEMBER_OUTCOME_PATCH)
        if now == (self._last_report or []) and not ended:
            return
        self._last_report = now
        self._reported += 1
        self._reported_end = ended
        progress = MemberProgress(member_run_id=self._run_id, agent_name=self._input.agent_name,
                                  version=self._reported, requirements=self._requirements,
                                  outcome=self._output() if ended else None)
        asyncio.create_task(self._tell(team_run_id, progress))

    async def _tell(self, team_run_id: str, progress: MemberProgress) -> None:
        self._reports_in_flight += 1
        try:
            await workflow.get_external_workflow_handle(team_run_id).signal(MEMBER_PROGRESS, progress)
        except Exception as exc:  # the team run is gone: nobody to tell
            workflow.logger.warning("could not report to team run %s: %s", team_run_id, exc)
        finally:
            self._reports_in_flight -= 1

    async def _quiesce(self) -> None:
        """Before closing: every caller answered, every approval event mirrored, tool results sealed."""
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            # A member closes only once its team has its last report: the team's view is then final.
            await workflow.wait_condition(lambda: self._reports_in_flight == 0)
            if self._input.notify:
                await self._notices.drained(within=timedelta(minutes=5))
            await self._audit.drained()
            await self._seal()
            # A decision may have come in meanwhile (refused, but recorded): go round again.
            if self._audit.empty and workflow.all_handlers_finished():
                return

    async def _seal(self) -> None:
        """Commit local tool results to history before a closing command.

        The server refuses to close a workflow while signals or updates arrived during the task,
        and retries the whole task; local-activity results of that task are then lost and the
        tools would run again. A timer's task never closes the workflow, so it always lands;
        callers waiting on an update were already answered in it.
        """
        if self._unsealed_tools:
            self._unsealed_tools = False
            await workflow.sleep(timedelta(milliseconds=1))

    async def _continue_as_new_if_due(self) -> None:
        if not self._history_full():
            return
        # The audit outbox is carried over, in-flight batch included: its writes are idempotent,
        # so the new run simply writes it again rather than holding this boundary for PostgreSQL.
        await self._seal()
        # A decision may have arrived during the seal; its handler must answer before we go.
        if workflow.all_handlers_finished():
            workflow.continue_as_new(self._carry())

    # ----------------------------------------------------------------------------- audit
    def _record(self, req: RunRequirement, kind: str, **details: Any) -> None:
        self._audit.record(req, kind, **details)

    def _record_audited_call(self, call: PendingCall) -> None:
        """A call of an ``@approval(type=audit)`` tool that ran with no human step: recorded, not blocked."""
        req = self._decided_without_pause(call, "audit", "audit", "policy:audit", result=call.output)
        self._record(req, "executed", payload={"allowed_by": "policy:audit"}, requirement_kind="none")

    def _decided_without_pause(
        self, call: PendingCall, id_prefix: str, approval_type: str, resolved_by: str | None, result: str | None = None
    ) -> RunRequirement:
        """The approval record of a call that needed no pause: already confirmed, for the audit trail."""
        now = int(workflow.now().timestamp())
        return RunRequirement(
            id=f"{id_prefix}-{self._turn + 1}-{call.plan.tool_call_id}", kind="confirmation",
            approval_type=approval_type,  # type: ignore[arg-type]
            tool_execution=ToolExecution(tool_name=call.plan.tool_name, tool_call_id=call.plan.tool_call_id,
                                         arguments=dict(call.arguments), result=result),
            created_at=now, resolution="confirmed", confirmed=True, resolved_by=resolved_by, resolved_at=now,
        )

    async def _call_model(self) -> ModelTurn:
        return await workflow.execute_local_activity(
            CALL_MODEL,
            ModelRequest(run_id=self._run_id, agent_name=self._input.agent_name, messages=self._messages),
            result_type=ModelTurn,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=MODEL_RETRY,
            summary="model call",
        )

    def _start_call(self, plan: ToolCallPlan) -> PendingCall:
        call = PendingCall(plan=plan, arguments=dict(plan.arguments))
        if plan.invalid is not None:
            call.state, call.output = "done", f"Error: {plan.invalid}"
        elif plan.kind == "confirmation" and plan.tool_name in self._remembered:
            self._record_remembered_call(call, self._remembered[plan.tool_name])
        elif plan.kind is not None:
            call.state = "needs_human"
        return call

    def _record_remembered_call(self, call: PendingCall, by: dict[str, str | None]) -> None:
        """A call approved by an earlier "for the rest of this run" decision: runs at once, recorded as such."""
        req = self._decided_without_pause(call, "req", call.plan.approval_type, by["resolved_by"])
        self._record(req, "confirmed", payload={"via": "remembered", "remembered_from": by["approval_id"]})

    async def _settle_calls(self) -> None:
        """Run what can run, pause for what needs a person, until every call of the turn has a result."""
        while True:
            ready = [c for c in self._calls if c.state == "ready"]
            if ready:
                running = [asyncio.create_task(self._execute(c)) for c in ready]
                try:
                    await asyncio.gather(*running)
                except asyncio.CancelledError:
                    # gather gives up at the first cancelled call; a team's members each close first.
                    await workflow.wait_condition(lambda: all(t.done() for t in running))
                    raise
            waiting = [c for c in self._calls if c.state == "needs_human"]
            if not waiting:
                return
            await self._pause(waiting)

    async def _execute(self, call: PendingCall) -> None:
        plan = call.plan
        if plan.member is not None:
            call.state, call.output = "done", await self._members.run(call, self._turn)
            return
        request = ToolRunRequest(
            run_id=self._run_id,
            agent_name=self._input.agent_name,
            tool_name=plan.tool_name,
            tool_call_id=plan.tool_call_id,
            arguments=call.arguments,
        )
        timeout = timedelta(seconds=plan.timeout_seconds)
        try:
            if plan.idempotent:
                result = await workflow.execute_local_activity(
                    RUN_TOOL,
                    request,
                    result_type=ToolRunResult,
                    start_to_close_timeout=timeout,
                    retry_policy=RetryPolicy(maximum_attempts=plan.max_attempts, non_retryable_error_types=["ConfigurationError"]),
                    summary=plan.tool_name,
                )
                self._unsealed_tools = True
            else:
                result = await workflow.execute_activity(
                    RUN_TOOL,
                    request,
                    result_type=ToolRunResult,
                    start_to_close_timeout=timeout,
                    retry_policy=RetryPolicy(maximum_attempts=1),
                    summary=plan.tool_name,
                )
            call.state, call.output = "done", result.output
            if plan.approval_type == "audit" and call.requirement_id is None:
                self._record_audited_call(call)
        except _ACTIVITY_FAILURES as exc:
            if not plan.idempotent and isinstance(_root(exc), TimeoutError):
                call.state = "needs_human"
                call.plan = plan.model_copy(update={"kind": "confirmation"})
                call.uncertain = True
                return
            call.state, call.output = "done", f"Error: tool {plan.tool_name!r} failed: {_cause_message(exc)}"

    # ----------------------------------------------------------------------------- pauses
    async def _pause(self, waiting: list[PendingCall]) -> None:
        if self._status != RunStatus.paused:  # else: carried over continue-as-new, as it was
            if self._history_full():
                # Commit tool results before anyone is told of this pause, so the continue-as-new
                # below closes in the task that answers them, leaving no time for a new decision.
                await self._seal()
            self._pauses += 1
            now = int(workflow.now().timestamp())
            self._resolved_ids.update(r.id for r in self._requirements if r.resolution is not None)
            self._requirements = [self._requirement(c, now) for c in waiting]
            for r in self._requirements:
                self._record(r, "requested")
                if r.policy is not None:
                    self._notices.send(r, "requested", self._run_id)
            self._status = RunStatus.paused
        if self._history_full():
            # The cleanest boundary there is: nothing running, and the callers waiting for this
            # pause are answered first.
            await workflow.wait_condition(workflow.all_handlers_finished)
            await self._continue_as_new_if_due()
        await self._wait_for_decisions()
        self._status = RunStatus.running
        self._show()
        by_id = {r.id: r for r in self._requirements}
        for call in waiting:
            self._resolve_call(call, by_id[call.requirement_id or ""])

    async def _wait_for_decisions(self) -> None:
        """Until every requirement of the pause is decided: by a person, or by its deadline.

        Escalation steps and deadlines are durable timers measured from when the pause began;
        each step fires once. A reassignment or extension wakes the loop to set them anew.
        """
        decided = lambda: all(r.resolution is not None for r in self._requirements)  # noqa: E731
        # Histories from before search attributes woke only when all was decided.
        each_decision = workflow.patched(PATCH)
        while not decided():
            self._show()
            seen = (self._policy_changes, sum(r.resolution is not None for r in self._requirements) if each_decision else 0)
            changed = lambda: decided() or seen != (  # noqa: E731
                self._policy_changes, sum(r.resolution is not None for r in self._requirements) if each_decision else 0)
            due = [t for r in self._requirements if r.resolution is None for t in deadlines.clock(r)]
            if not due:
                await workflow.wait_condition(changed if each_decision else decided)
                continue
            remaining = min(due) - workflow.now().timestamp()
            if remaining > 0:
                try:
                    await workflow.wait_condition(changed, timeout=timedelta(seconds=remaining))
                    continue
                except asyncio.TimeoutError:
                    pass
            now = workflow.now().timestamp()
            record = lambda r, kind, payload: self._record(r, kind, payload=payload)  # noqa: E731
            notify = lambda r, kind: self._notices.send(r, kind, self._run_id)  # noqa: E731
            deadlines.escalate_due(self._requirements, now, record, notify)
            cancel = deadlines.expire_due(self._requirements, now, record, notify)
            if cancel is not None:
                self._cancel_by_policy = cancel

    def _requirement(self, call: PendingCall, now: int) -> RunRequirement:
        call.asks += 1
        uncertain = call.uncertain
        rid = f"req-{self._turn + 1}-{call.plan.tool_call_id}" + (f"-{call.asks}" if call.asks > 1 else "")
        call.requirement_id = rid
        return RunRequirement(
            id=rid,
            kind=call.plan.kind or "confirmation",
            tool_execution=ToolExecution(
                tool_name=call.plan.tool_name, tool_call_id=call.plan.tool_call_id, arguments=dict(call.arguments)
            ),
            user_input_schema=call.plan.user_input_schema,
            uncertain_outcome=uncertain,
            note=(
                f"The outcome of {call.plan.tool_name!r} is uncertain: an attempt may have run (its worker died or it "
                "timed out) and the tool is not idempotent. Confirm to run it again, reject to not run it."
                if uncertain
                else None
            ),
            pause=self._pauses,
            created_at=now,
            approval_type=call.plan.approval_type,  # type: ignore[arg-type]
            policy=call.plan.policy,
            paused_at=workflow.now().timestamp(),
            deadline=(
                workflow.now().timestamp() + call.plan.policy.timeout_seconds
                if call.plan.policy is not None and call.plan.policy.timeout_seconds is not None
                else None
            ),
        )

    def _resolve_call(self, call: PendingCall, req: RunRequirement) -> None:
        name = call.plan.tool_name
        if req.resolution == "rejected":
            who = f" by {req.resolved_by}" if req.resolved_by else ""
            reason = f" Reason: {req.rejection_reason}" if req.rejection_reason else ""
            prefix = "The earlier attempt's outcome is unknown and it was not run again. " if req.uncertain_outcome else ""
            call.state, call.output = "done", f"{prefix}The call to {name} was rejected{who}.{reason}"
        elif req.resolution == "expired":
            call.state, call.output = "done", f"The call to {name} was not run: {req.rejection_reason}."
        elif req.resolution == "result_provided":
            call.state, call.output = "done", req.tool_execution.result or ""
        else:
            call.arguments = dict(req.tool_execution.arguments)
            call.state, call.output = "ready", None

    # ----------------------------------------------------------------------------- decisions
    def _check_all(self, items: list[Decision], *, whole_pause: bool) -> list[decisions.Patch]:
        if self._status.is_final:
            raise RunEndedError(f"run {self._run_id} has ended ({self._status.value}); it takes no decisions")
        seen: set[str] = set()
        patches = []
        for d in items:
            if d.requirement_id in seen:
                raise InvalidDecisionError(
                    f"run {self._run_id}: two decisions for requirement {d.requirement_id!r} in one call"
                )
            seen.add(d.requirement_id)
            req = self._find(d.requirement_id)
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
            for r in self._members.requirements:
                if refused is not None and r.id == refused.requirement_id and isinstance(exc, DecisionNotAllowedError):
                    self._members.forward(r, refused.action, refused)  # the member refuses it and records that
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

    def _change(self, change: ChangeApproval) -> None:
        if self._status.is_final:
            raise RunEndedError(f"run {self._run_id} has ended ({self._status.value})")
        req = self._find(change.requirement_id)
        if req.member_run_id is not None:
            if change.approvers is not None:
                ApprovalPolicy(approvers=change.approvers)
            self._members.forward(req, "change_approval", change)
            return
        policy = req.policy or ApprovalPolicy()
        details: dict[str, Any] = {"changed_by": change.changed_by}
        if change.approvers is not None:
            policy = ApprovalPolicy.model_validate({**policy.model_dump(), "approvers": change.approvers})
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
            if self._status.is_final:
                raise RunEndedError(f"run {self._run_id} has ended ({self._status.value})")
            self._find(change.requirement_id)
            if change.approvers is not None:
                ApprovalPolicy(approvers=change.approvers)
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
        self._show()

    def _signal(self, decision: Decision) -> None:
        try:
            self._decide_now([decision], whole_pause=False, via="signal")
        except HitlError as exc:
            # A signal has no caller to answer: a duplicate or bad decision is logged and changes nothing.
            workflow.logger.warning("decision refused: %s", exc)

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

    # ----------------------------------------------------------------------------- helpers
    def _output(self) -> RunOutput:
        return RunOutput(
            run_id=self._run_id,
            agent_name=self._input.agent_name,
            session_id=self._input.session_id,
            status=self._effective_status(),
            content=self._content,
            error=self._error,
            requirements=[r.model_copy(deep=True) for r in self._all_requirements()],
            pauses=self._pauses,
        )

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

    def _history_full(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= self._input.history_event_limit

    def _carry(self) -> RunInput:
        state = CarriedState(
            messages=self._messages,
            calls=self._calls,
            requirements=self._requirements,
            resolved_ids=sorted(self._resolved_ids),
            pauses=self._pauses,
            paused=self._status == RunStatus.paused,
            outbox=self._audit.events,
            notices=self._notices.notices,
            remembered=self._remembered,
            audit_seq=self._audit.seq,
            turn=self._turn,
            reported=self._reported,
        )
        return self._input.model_copy(update={"carried": state, "message": None})


# A remote activity's failure arrives as ActivityError(cause=...); a local one's as its cause.
_ACTIVITY_FAILURES = (ActivityError, ApplicationError, TimeoutError)


def _root(exc: BaseException) -> BaseException:
    return exc.cause if isinstance(exc, ActivityError) and exc.cause is not None else exc


def _cause_message(exc: BaseException) -> str:
    cause = _root(exc)
    return cause.message if isinstance(cause, ApplicationError) else str(cause)


def _cause_type(exc: BaseException) -> str:
    cause = _root(exc)
    return (cause.type or "ActivityError") if isinstance(cause, ApplicationError) else type(cause).__name__
