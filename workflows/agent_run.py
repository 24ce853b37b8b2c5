"""The run workflow: one per agent run, its workflow id is the run id.

Model calls and the tools no person had to decide on are local activities: the run then goes
from one model turn to the next without a round trip through the server's task queues. A tool
call that waited for a decision runs only once that decision is in history (``calls.py``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ApplicationError

# What Temporal's workflow sandbox passes through, declared here once (tests/workflows/test_sandbox.py keeps it
# so). The sandbox (HITL_WORKFLOW_SANDBOX=1, and every replay) imports this module afresh for every run and
# guards its code; what it imports below is imported once, outside the sandbox, and shared by runs. That is
# safe because none of it keeps state a run could change:
# - pydantic: payload models are validated in every activation; costly to import, no run state.
# - hitl._wire, hitl.errors, hitl.run: the contracts crossing the boundary, errors, the run's data model.
# - hitl._core.registry: the agents this worker defines, found by name (the documented upward arrow); read only.
# - hitl.workflows.*: the workflow's helpers, deterministic by the same rules (no I/O, no clocks, every change
#   patched, the replay test); passed through themselves, so they need no block of their own.
with workflow.unsafe.imports_passed_through():
    import pydantic

    import hitl._core.registry as _registry
    import hitl.workflows.calls as calls
    import hitl.workflows.deadlines as deadlines
    import hitl.workflows.generation as generation
    import hitl.workflows.observe as observe
    import hitl.workflows.requirements as requirements
    from hitl._wire import (
        CALL_MODEL,
        WORKFLOW_NAME,
        CarriedState,
        ModelRequest,
        ModelTurn,
        PendingCall,
        RunInput,
        ToolCallPlan,
    )
    from hitl.errors import HitlError
    from hitl.run import RunOutput, RunRequirement, RunStatus
    from hitl.workflows.handlers import DecisionHandlers
    from hitl.workflows.outbox import AuditOutbox, NoticeQueue
    from hitl.workflows.payloads import decode, require_decryptable
    from hitl.workflows.refusals import Refusals
    from hitl.workflows.signatures import Signatures
    from hitl.workflows.team import MemberRuns, TeamReporter
    from hitl.workflows.upgrade import UpgradeOnRequest, continue_on_current_version
    from hitl.workflows.verdicts import Verdicts
    from hitl.workflows.visibility import PATCH, SearchAttributes

MEMBER_OUTCOME_PATCH = "hitl-member-outcome"
_TICK = timedelta(milliseconds=1)
"""The shortest wait for a deadline: a shorter one rounds to no timer at all."""


class AgentNotServedHere(Exception):
    """This worker does not define the run's agent.

    Not a HitlError, so it fails the workflow *task*, never the run: Temporal gives the task to
    another worker (one that serves the agent, on a shared task queue) or retries it here until
    this worker is redeployed with the agent.
    """


MODEL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=8,
    non_retryable_error_types=["ModelRequestError", "ConfigurationError"],
)


@workflow.defn(name=WORKFLOW_NAME, failure_exception_types=[HitlError, pydantic.ValidationError])
class AgentRunWorkflow(DecisionHandlers, UpgradeOnRequest):
    @workflow.init
    def __init__(self, raw: RawValue) -> None:
        self._generation = generation.begin()  # first: what every older change's guard asks
        self._run_id = workflow.info().workflow_id
        self._refused_input: HitlError | None = None
        try:
            require_decryptable(raw, f"run {self._run_id}: run input")
            inp = decode(raw, RunInput, f"run {self._run_id}: run input", 4 * 1024 * 1024)
        except HitlError as exc:  # failed in run(), with its reason
            self._refused_input, inp = exc, RunInput(agent_name="(refused)")
        else:
            if not _registry.serves(inp.agent_name):
                workflow.logger.warning("run %s: agent %r is not served by this worker (it serves %s); leaving the run "
                                        "to a worker that does", self._run_id, inp.agent_name, _registry.names())
                raise AgentNotServedHere(
                    f"run {self._run_id}: agent {inp.agent_name!r} is not defined in this worker "
                    f"(it serves {_registry.names()}); the run waits for a worker that serves it")
        self._input = inp
        carried = inp.carried or CarriedState(messages=[*inp.history, {"role": "user", "content": inp.message or ""}])
        self._messages = list(carried.messages)
        self._calls = list(carried.calls)
        self._requirements = list(carried.requirements)
        self._resolved = {rid: "" for rid in carried.resolved_ids} | carried.resolutions
        self._pauses = carried.pauses
        self._turn = carried.turn
        self._mcp_tools = carried.mcp_tools
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
        self._team = TeamReporter(self._run_id, inp, carried.reported)
        self._verdicts = Verdicts(self._generation)
        self._signatures = Signatures(self._run_id, inp.team_run_id, carried.change_nonces)
        self._refusals = Refusals()  # refused attempts kept per decider and requirement (in this run, from now)
        # Requirement id -> the trace of the decision that allowed its call (not history: spans only).
        self._traces: dict[str, dict[str, str]] = {}

    # ----------------------------------------------------------------------------- main loop
    @workflow.run
    async def run(self, raw: RawValue) -> RunOutput:
        if self._refused_input is not None:
            raise ApplicationError(str(self._refused_input), type=type(self._refused_input).__name__, non_retryable=True)
        inp = self._input
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
        except calls.ACTIVITY_FAILURES as exc:
            self._status = RunStatus.error
            self._error = calls.cause_message(exc)
            self._show()
            await self._quiesce()
            raise ApplicationError(
                f"run {self._run_id} failed: {self._error}", type=calls.cause_type(exc), non_retryable=True
            ) from None
        self._show()
        await self._quiesce()
        return self._output()

    def _show(self) -> None:
        """Keep the search attributes, and a member run's team, up to date."""
        self._search.publish(self._effective_status(), self._all_requirements())
        if self._input.team_run_id is not None:
            # The last report, with the member's answer, is newer than histories recorded without it.
            ended = self._status.is_final and generation.patched(MEMBER_OUTCOME_PATCH)
            self._team.report(self._requirements, self._output() if ended else None)

    async def _quiesce(self) -> None:
        """Before closing: every caller answered, every approval event mirrored, tool results sealed."""
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            # A member closes only once its team has its last report: the team's view is then final.
            await self._team.delivered()
            await self._members.closed()
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
        if (carrier := observe.recorded(self._input.agent_name, self._run_id, req, kind, details)) is not None:
            self._traces[req.id] = carrier

    def _record_audited_call(self, call: PendingCall) -> None:
        """A call of an ``@approval(type=audit)`` tool that ran with no human step: recorded, not blocked."""
        req = requirements.decided_without_pause(call, turn=self._turn, id_prefix="audit", approval_type="audit",
                                                 resolved_by="policy:audit", now=workflow.now().timestamp(),
                                                 result=call.output)
        self._record(req, "executed", payload={"allowed_by": "policy:audit"}, requirement_kind="none")

    async def _call_model(self) -> ModelTurn:
        turn: ModelTurn = await workflow.execute_local_activity(
            CALL_MODEL,
            ModelRequest(run_id=self._run_id, agent_name=self._input.agent_name, messages=self._messages,
                         session_id=self._input.session_id, mcp_tools=self._mcp_tools),
            result_type=ModelTurn,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=MODEL_RETRY,
            summary="model call",
        )
        # The MCP tools listed by the run's first model call are its tools from then on (in history with
        # that call's result: replay and every worker offer the same). A history recorded before MCP
        # toolsets has none in any result, so nothing here changes how it replays.
        if self._mcp_tools is None and turn.mcp_tools is not None:
            self._mcp_tools = turn.mcp_tools
        return turn

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
        req = requirements.decided_without_pause(call, turn=self._turn, id_prefix="req", approval_type=call.plan.approval_type,
                                                 resolved_by=by["resolved_by"], now=workflow.now().timestamp())
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
                    await workflow.wait_condition(lambda: all(t.done() for t in running))  # noqa: B023 - awaited here
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
        with observe.within(self._traces.pop(call.requirement_id or "", None)):
            outcome = await calls.execute(call, self._run_id, self._input.agent_name, self._input.session_id,
                                          self._input.user_id)
        self._unsealed_tools = self._unsealed_tools or outcome.ran_locally
        if outcome.uncertain:
            call.state, call.uncertain = "needs_human", True
            call.plan = plan.model_copy(update={"kind": "confirmation"})
            return
        call.state, call.output = "done", outcome.output
        if plan.approval_type == "audit" and call.requirement_id is None and outcome.ok:
            self._record_audited_call(call)

    # ----------------------------------------------------------------------------- pauses
    async def _pause(self, waiting: list[PendingCall]) -> None:
        if self._status != RunStatus.paused:  # else: carried over continue-as-new, as it was
            if self._history_full():
                # Commit tool results before anyone is told of this pause, so the continue-as-new
                # below closes in the task that answers them, leaving no time for a new decision.
                await self._seal()
            self._pauses += 1
            at = workflow.now().timestamp()
            self._resolve_earlier([r for r in self._requirements if r.resolution is not None])
            self._resolve_earlier(self._members.drop_finished())
            self._requirements = [requirements.for_call(c, turn=self._turn, pause=self._pauses, now=at) for c in waiting]
            observe.paused(self._input.agent_name, self._run_id, self._requirements)
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
            requirements.resolve_call(call, by_id[call.requirement_id or ""])

    async def _wait_for_decisions(self) -> None:
        """Until every requirement of the pause is decided: by a person, or by its deadline.

        Escalation steps and deadlines are durable timers measured from when the pause began;
        each step fires once. A reassignment or extension wakes the loop to set them anew.
        """
        decided = lambda: all(r.resolution is not None for r in self._requirements)  # noqa: E731
        # Histories from before search attributes woke only when all was decided.
        each_decision = generation.patched(PATCH)
        while not decided():
            self._show()
            seen = (self._policy_changes, sum(r.resolution is not None for r in self._requirements) if each_decision else 0)
            # An upgrade waits for callers to be answered: never for a caller waiting on this pause's end.
            upgrade_now = lambda: self._upgrade_asked and workflow.all_handlers_finished()  # noqa: E731
            changed = lambda: decided() or upgrade_now() or seen != (  # noqa: E731, B023 - used in this pass only
                self._policy_changes, sum(r.resolution is not None for r in self._requirements) if each_decision else 0)
            if upgrade_now():
                await self._upgrade_at_pause()
            due = [t for r in self._requirements if r.resolution is None for t in deadlines.clock(r)]
            if not due:
                await workflow.wait_condition(changed if each_decision else decided)
                continue
            remaining = min(due) - workflow.now().timestamp()
            if remaining > 0:
                try:
                    # At least a millisecond: a timeout that rounds to zero makes no timer, and the loop would
                    # spin without yielding until the deadlock detector failed the task (a tiny extend_by did it).
                    await workflow.wait_condition(changed, timeout=max(timedelta(seconds=remaining), _TICK))
                    continue
                except TimeoutError:
                    pass
            now = workflow.now().timestamp()
            record = lambda r, kind, payload: self._record(r, kind, payload=payload)  # noqa: E731
            notify = lambda r, kind: self._notices.send(r, kind, self._run_id)  # noqa: E731
            deadlines.escalate_due(self._requirements, now, record, notify)
            cancel = deadlines.expire_due(self._requirements, now, record, notify)
            if cancel is not None:
                self._cancel_by_policy = cancel

    async def _upgrade_at_pause(self) -> None:
        """Asked to move to the current version (``workflows/upgrade.py``), no caller waiting: continue
        as new now. A team with members at work, a member, or a pause partly decided stays."""
        self._upgrade_asked = False
        untouched = lambda: all(r.resolution is None for r in self._requirements)  # noqa: E731
        if self._members.views or self._input.team_run_id is not None or not untouched():
            workflow.logger.info("run %s: not upgraded: a team with members at work, a member, or a pause partly "
                                 "decided stays on its version", self._run_id)
            return
        await self._seal()
        if untouched() and workflow.all_handlers_finished():
            continue_on_current_version(self._carry())
        self._upgrade_asked = untouched()  # a caller came in during the seal: once it is answered

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

    def _history_full(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= self._input.history_event_limit

    def _carry(self) -> RunInput:
        state = CarriedState(
            messages=self._messages,
            calls=self._calls,
            requirements=self._requirements,
            # A team's members have all answered by now; their requirements are resolved for good.
            resolved_ids=sorted(set(self._resolved) | {r.id for r in self._members.requirements}),
            resolutions={k: v for k, v in self._resolved.items() if v},
            pauses=self._pauses,
            paused=self._status == RunStatus.paused,
            outbox=self._audit.events,
            notices=self._notices.notices,
            remembered=self._remembered,
            change_nonces=self._signatures.carried(workflow.now().timestamp()),
            audit_seq=self._audit.seq,
            turn=self._turn,
            reported=self._team.version,
            mcp_tools=self._mcp_tools,
        )
        return self._input.model_copy(update={"carried": state, "message": None})
