"""Decisions on a team member's requirement sent straight to the member run, which owns it.

The team path (``continue_run`` on the team, forwarded by signal) crosses the server's transfer
queue twice before the member can act: the team's signal, then the member's task. On the direct
path the client asks the team how to route (``decision_route``, a query: nothing is written), the
team checks the decisions as its ``continue_run`` would (approvers, policy, separation of duties,
quorum, strict signatures, the whole pause) and names the member; the client then sends them to
the member as an update (``team_decide``), which checks them all again against the requirement it
owns, records them in its own history and only then schedules the tool. The member reports the
change to its team as for any decision it takes, and the caller waits for the team's next pause or
end (``wait_for_progress``).

The member's ``team_continue`` goes one step further: it answers at the member's next pause or
end with the report the member sends its team, and the caller hands that report to the team
itself (``member_report``, an update: the team acts on it in a task the server dispatches at
once), instead of waiting for the member's signal to cross the transfer queue twice. The member's
signal still goes, and the team takes whichever comes first (reports carry versions).

Queries and updates change nothing in histories recorded before them, so none is patched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RawValue

from hitl import limits
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
from hitl.decisions import ContinueRunRequest, Decision
from hitl.errors import DecisionNotAllowedError, HitlError, InvalidInputError
from hitl.run import RunOutput, RunRequirement, RunStatus
from hitl.workflows.payloads import decode, refusal

if TYPE_CHECKING:
    from hitl.workflows.team import TeamReporter

class DirectDecisions:
    """A mixin of the run workflow: the team's ``decision_route`` query, the member's ``team_decide`` update."""

    # The run's state and checks, from AgentRunWorkflow and DecisionHandlers.
    _run_id: str
    _input: Any
    _status: RunStatus
    _pauses: int
    _requirements: list[RunRequirement]
    _members: Any
    _team: TeamReporter

    def _check_all(self, items: list[Decision], *, whole_pause: bool, lenient: bool = False) -> list[Any]:
        raise NotImplementedError

    def _validate(self, items: list[Decision], *, whole_pause: bool) -> None:
        raise NotImplementedError

    def _decide_now(self, items: list[Decision], *, whole_pause: bool, via: str) -> None:
        raise NotImplementedError

    def _all_requirements(self) -> list[RunRequirement]:
        raise NotImplementedError

    def _output(self) -> RunOutput:
        raise NotImplementedError

    def _progressed(self, pause: int) -> bool:
        raise NotImplementedError

    def _show(self) -> None:
        raise NotImplementedError

    def _take_report(self, progress: MemberProgress) -> None:
        raise NotImplementedError

    @workflow.query(name=DECISION_ROUTE)
    def decision_route(self, raw: RawValue) -> DecisionRoute:
        """Check decisions as this team's ``continue_run`` would, changing nothing; say where they go."""
        try:
            request = decode(raw, ContinueRunRequest, f"run {self._run_id}: {DECISION_ROUTE}", limits.MAX_REQUEST_BYTES)
            patches = self._check_all(request.decisions, whole_pause=True)
        except DecisionNotAllowedError:
            return DecisionRoute()  # the team records the refused attempt, as it always has
        except HitlError as exc:
            return DecisionRoute(refused_type=type(exc).__name__, refused=str(exc))
        if self._input.team_run_id is not None or not patches:
            return DecisionRoute()
        by_id = {r.id: r for r in self._all_requirements()}
        owners = {by_id[p.requirement_id].member_run_id for p in patches}
        # One member, nothing of the team's own, and each decision resolves its requirement (a
        # confirmation toward a quorum answers at once on the team, which the team path does).
        if len(owners) != 1 or None in owners or any(p.resolution == "approval_added" for p in patches):
            return DecisionRoute()
        member = owners.pop()
        assert member is not None
        return DecisionRoute(member_run_id=member, after_pause=self._pauses,
                             requirement_ids=[p.requirement_id[len(member) + 1:] for p in patches])

    def _team_decisions(self, raw: RawValue, name: str) -> TeamDecisions:
        """The update's decisions, if this run is a member of the team that sent them."""
        request = decode(raw, TeamDecisions, f"run {self._run_id}: {name}", limits.MAX_REQUEST_BYTES)
        team = self._input.team_run_id
        if team is None:
            raise InvalidInputError(f"run {self._run_id} is not a team member's run; it takes no {name}")
        if request.team_run_id != team:
            raise InvalidInputError(
                f"run {self._run_id} works for team run {team}, not {request.team_run_id[:200]}; {name} refused")
        return request

    def _decide_from_team(self, raw: RawValue, name: str) -> None:
        try:
            self._decide_now(self._team_decisions(raw, name).decisions, whole_pause=True, via="team")
        except HitlError as exc:
            raise refusal(exc) from None

    def _validate_from_team(self, raw: RawValue, name: str) -> None:
        try:
            request = self._team_decisions(raw, name)
        except HitlError as exc:
            raise refusal(exc) from None
        self._validate(request.decisions, whole_pause=True)

    @workflow.update(name=TEAM_DECIDE)
    def team_decide(self, raw: RawValue) -> RunOutput:
        """Decisions on this member's requirements made through its team: checked here again, recorded, applied."""
        self._decide_from_team(raw, TEAM_DECIDE)
        # Not absorbed, unlike a team_decision signal: the team learns of it from this run's report.
        return self._output()

    @team_decide.validator
    def _validate_team_decide(self, raw: RawValue) -> None:
        self._validate_from_team(raw, TEAM_DECIDE)

    @workflow.update(name=TEAM_CONTINUE)
    async def team_continue(self, raw: RawValue) -> MemberProgress:
        """``team_decide``, then, at this run's next pause or end, the report it sends its team then."""
        pause = self._pauses
        self._decide_from_team(raw, TEAM_CONTINUE)
        await workflow.wait_condition(lambda: self._progressed(pause))
        self._show()  # at a pause that continues as new, before the report of it went out
        return self._team.last_report or MemberProgress(member_run_id=self._run_id, agent_name=self._input.agent_name,
                                                        version=0)  # nothing reported: the team ignores it

    @team_continue.validator
    def _validate_team_continue(self, raw: RawValue) -> None:
        self._validate_from_team(raw, TEAM_CONTINUE)

    @workflow.update(name=MEMBER_REPORT)
    async def member_report(self, raw: RawValue) -> RunOutput:
        """A member's report, as its ``member_progress`` signal; returns at this team's next pause or end."""
        try:
            report = decode(raw, MemberReport, f"run {self._run_id}: {MEMBER_REPORT}", 4 * limits.MAX_OUTPUT_BYTES)
        except HitlError as exc:
            raise refusal(exc) from None
        self._take_report(report.progress)
        await workflow.wait_condition(lambda: self._progressed(report.after_pause))
        return self._output()

    @member_report.validator
    def _validate_member_report(self, raw: RawValue) -> None:
        try:
            report = decode(raw, MemberReport, f"run {self._run_id}: {MEMBER_REPORT}", 4 * limits.MAX_OUTPUT_BYTES)
        except HitlError as exc:
            raise refusal(exc) from None
        if report.progress.member_run_id not in self._members.views:
            raise refusal(InvalidInputError(
                f"run {self._run_id} has no member run {report.progress.member_run_id[:200]!r} working now; "
                f"{MEMBER_REPORT} refused"))
