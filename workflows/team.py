"""A team run's members: each delegation is a child run of the member agent.

The team shows each member's requirements under the id ``<member_run_id>/<requirement_id>``
(the member's audit id too). Decisions on them are applied to the team's copy at once, so the
team can answer its caller, and sent on to the member by signal; the member, which owns the
requirement, reports back whatever it then holds (``member_progress``), and that wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

import hitl.workflows.generation as generation
from hitl._wire import MEMBER_PROGRESS, WORKFLOW_NAME, MemberProgress, PendingCall, RunInput, member_slug
from hitl.run import RunOutput, RunRequirement, RunStatus


class MemberView:
    """What the team knows of one member run."""

    def __init__(self, member_run_id: str, agent_name: str) -> None:
        self.member_run_id = member_run_id
        self.agent_name = agent_name
        self.version = 0
        self.requirements: list[RunRequirement] = []
        self.active = True
        self.outcome: RunOutput | None = None


MEMBERS_CLOSE_FIRST_PATCH = "hitl-team-closes-after-its-members"
"""A team closes only once every member run it started has closed (before: as soon as it had answered)."""


class MemberRuns:
    def __init__(self, run_id: str, run_input: RunInput) -> None:
        self._run_id = run_id
        self._input = run_input
        self.views: dict[str, MemberView] = {}
        self._closing: list[asyncio.Task[Any]] = []

    # ---------------------------------------------------------------- delegation
    async def run(self, call: PendingCall, turn: int) -> str:
        """Run the member on its task as a child workflow; its answer is the call's result."""
        plan = call.plan
        member = plan.member
        assert member is not None
        slug = member_slug(member.agent_name)
        member_run_id = f"{self._run_id}.{slug}.{turn + 1}-{plan.tool_call_id}"
        self.views[member_run_id] = MemberView(member_run_id, member.agent_name)
        task = str(call.arguments.get("task", ""))
        child_input = RunInput(
            agent_name=member.agent_name,
            message=task,
            session_id=self._input.session_id,
            user_id=self._input.user_id,
            audit=member.audit,
            audit_agent=member.audit_agent,
            notify=member.notify,
            history_event_limit=member.history_event_limit,
            search_attributes=self._input.search_attributes,
            team_run_id=self._run_id,
        )
        view = self.views[member_run_id]
        # Abandon, not cancel, on the team's close: a member that has answered may still be
        # committing its last tool results; the team's own cancellation cancels it below.
        handle = await workflow.start_child_workflow(
            WORKFLOW_NAME, child_input, id=member_run_id, task_queue=workflow.info().task_queue,
            result_type=RunOutput, parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=f"{member.agent_name}: {task[:200]}",
        )
        closed = asyncio.create_task(_closed(handle))
        self._closing.append(closed)
        try:
            # The member's last report carries its answer, before its run has closed.
            await workflow.wait_condition(lambda: view.outcome is not None or closed.done())
        except asyncio.CancelledError:
            # The team is cancelled: so is the member, and the team closes after it.
            await workflow.get_external_workflow_handle(member_run_id).cancel()
            try:
                await workflow.wait_condition(closed.done, timeout=timedelta(minutes=5))
            except TimeoutError:
                workflow.logger.warning("member run %s did not close within 5 minutes of its cancellation", member_run_id)
            raise
        finally:
            view.active = False
        output = view.outcome or closed.result()
        if isinstance(output, str):
            return output
        if output.status == RunStatus.completed:
            return output.content or ""
        return f"Member {member.agent_name!r} did not finish ({output.status.value}): {output.content or output.error}"

    async def closed(self) -> None:
        """Before the team closes: until every member run it started has closed.

        A member answers (its last report) and closes a moment later. Had the team closed
        meanwhile, in the task that ran its leader's last model call, the server would refuse the
        close for the member's close event and run the whole task again, the model call and the
        updates answered in it included (their callers then get an error to send them again). A
        task that answers and does not close is never refused; the team closes in the next one.
        """
        if all(t.done() for t in self._closing) or not workflow.patched(MEMBERS_CLOSE_FIRST_PATCH):
            return
        try:
            await workflow.wait_condition(lambda: all(t.done() for t in self._closing), timeout=timedelta(minutes=5))
        except TimeoutError:
            workflow.logger.warning("team run %s: a member run had not closed 5 minutes after answering", self._run_id)

    # ---------------------------------------------------------------- what members report
    def report(self, progress: MemberProgress) -> bool:
        """Take a member's report; True when it raises a requirement the team had not seen."""
        view = self.views.get(progress.member_run_id)
        if view is None or not view.active or progress.version <= view.version:
            return False  # late, or out of order: what the team holds is newer
        view.version = progress.version
        if progress.outcome is not None:
            view.outcome = progress.outcome
        known = {r.id: r for r in view.requirements}
        fresh = []
        for r in progress.requirements:
            shown = self._shown(view, r)
            mine = known.get(shown.id)
            if mine is not None and mine.resolution is not None and shown.resolution is None:
                shown = mine  # a decision the team sent is on its way to the member
            fresh.append(shown)
        raised = any(r.resolution is None and r.id not in known for r in fresh)
        view.requirements = fresh
        return raised

    def _shown(self, view: MemberView, req: RunRequirement) -> RunRequirement:
        return req.model_copy(update={
            "id": f"{view.member_run_id}/{req.id}",
            "member_agent_name": view.agent_name,
            "member_run_id": view.member_run_id,
        })

    @property
    def requirements(self) -> list[RunRequirement]:
        return [r for v in self.views.values() for r in v.requirements]

    def drop_finished(self) -> list[RunRequirement]:
        """Forget members that have answered (a new pause begins); their requirements, as they ended."""
        done = [v for v in self.views.values() if not v.active]
        for v in done:
            del self.views[v.member_run_id]
        return [r for v in done for r in v.requirements]

    # ---------------------------------------------------------------- decisions sent on
    def owner(self, req: RunRequirement) -> MemberView | None:
        return self.views.get(req.member_run_id or "") if req.member_run_id else None

    def forward(
        self, req: RunRequirement, signal: str, payload: BaseModel, wrap: Callable[[Any], BaseModel] | None = None
    ) -> None:
        """Send a decision (or change) on a member's requirement to the member, under its own id.

        ``wrap`` builds the signal's payload around the renamed one (a ``TeamDecision``).
        """
        view = self.owner(req)
        assert view is not None
        moved = payload.model_copy(update={"requirement_id": req.id[len(view.member_run_id) + 1:]})
        asyncio.create_task(_signal(view.member_run_id, signal, wrap(moved) if wrap else moved))


IN_ORDER_PATCH = "hitl-member-reports-in-order"


class TeamReporter:
    """A member run's side: report its requirements, and at the end its answer, to its team run.

    Reports go one at a time, each after the team has taken the previous one, and a report
    waiting its turn is replaced by a newer one (each carries the whole state). Sent together,
    two reports could reach the team out of order, the answer first: the team then closes, the
    server refuses the close because of the late report, and the team's last task, its leader's
    model call included, runs again.
    """

    def __init__(self, run_id: str, run_input: RunInput, version: int) -> None:
        self._run_id = run_id
        self._input = run_input
        self.version = version
        self._last: list[dict[str, Any]] | None = None
        self._ended = False
        self._queued: MemberProgress | None = None
        self._sending = False
        self._in_flight = 0
        self.last_report: MemberProgress | None = None
        """The newest report made (sent, or waiting its turn): what ``team_continue`` answers."""

    def report(self, requirements: list[RunRequirement], outcome: RunOutput | None) -> None:
        """Tell the team when the requirements changed, and once with the outcome when the run ends."""
        team_run_id = self._input.team_run_id
        assert team_run_id is not None
        now = [r.model_dump() for r in requirements]
        final = outcome is not None and not self._ended
        if now == (self._last or []) and not final:
            return
        self._last = now
        self._ended = self._ended or final
        self.version += 1
        progress = MemberProgress(member_run_id=self._run_id, agent_name=self._input.agent_name,
                                  version=self.version, requirements=[r.model_copy(deep=True) for r in requirements],
                                  outcome=outcome if final else None)
        self.last_report = progress
        if not generation.patched(IN_ORDER_PATCH):  # histories recorded before reports went in order
            self._in_flight += 1
            asyncio.create_task(self._send_now(team_run_id, progress))
            return
        self._queued = progress
        if not self._sending:
            self._sending = True
            asyncio.create_task(self._send_in_order(team_run_id))

    def absorb(self, requirements: list[RunRequirement]) -> None:
        """The team made this change itself (a decision it sent on): nothing to tell it."""
        self._last = [r.model_dump() for r in requirements]

    async def _send_in_order(self, team_run_id: str) -> None:
        try:
            while self._queued is not None:
                progress, self._queued = self._queued, None
                await self._signal(team_run_id, progress)
        finally:
            self._sending = False

    async def _send_now(self, team_run_id: str, progress: MemberProgress) -> None:
        try:
            await self._signal(team_run_id, progress)
        finally:
            self._in_flight -= 1

    async def _signal(self, team_run_id: str, progress: MemberProgress) -> None:
        await _signal(team_run_id, MEMBER_PROGRESS, progress)

    async def delivered(self) -> None:
        """Until every report has reached the team (a member closes only after its last)."""
        await workflow.wait_condition(lambda: self._in_flight == 0 and not self._sending and self._queued is None)


async def _closed(handle: Any) -> RunOutput | str:
    """The member run's result once it closes, or what went wrong, as the leader reads it."""
    try:
        return await handle
    except ChildWorkflowError as exc:
        cause = exc.cause
        detail = getattr(cause, "message", None) or str(cause or exc)
        return f"Error: member run {handle.id} failed: {detail}"


async def _signal(run_id: str, name: str, payload: Any) -> None:
    """Signal another run of the team; one that has ended is told nothing (its last report said how)."""
    try:
        await workflow.get_external_workflow_handle(run_id).signal(name, payload)
    except Exception as exc:
        workflow.logger.warning("could not send %s to run %s: %s", name, run_id, exc)
