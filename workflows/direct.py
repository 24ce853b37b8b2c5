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

A query and an update change nothing in histories recorded before them, so neither is patched.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from hitl import limits
    from hitl.decisions import ContinueRunRequest, Decision
    from hitl.errors import DecisionNotAllowedError, HitlError, InvalidInputError
    from hitl.run import RunOutput, RunRequirement, RunStatus
    from hitl.workflows.payloads import decode, refusal

DECISION_ROUTE = "decision_route"
TEAM_DECIDE = "team_decide"


class TeamDecisions(BaseModel):
    """The ``team_decide`` update: decisions its team checked, under the member's own requirement ids."""

    model_config = ConfigDict(extra="forbid")

    team_run_id: str
    decisions: list[Decision] = Field(default_factory=list, max_length=1000)


class DecisionRoute(BaseModel):
    """The team's answer to ``decision_route``: where the decisions go, or why they are refused."""

    member_run_id: str | None = None
    """The one member run that owns every decided requirement; None: send them to the team."""
    requirement_ids: list[str] = Field(default_factory=list)
    """Each decision's requirement under the member's own id, in the order sent."""
    after_pause: int = 0
    """The team's pause count now: ``wait_for_progress`` answers at the next one, or the end."""
    refused_type: str | None = None
    """The HitlError the team's ``continue_run`` would refuse these decisions with, and its message."""
    refused: str | None = None


class DirectDecisions:
    """A mixin of the run workflow: the team's ``decision_route`` query, the member's ``team_decide`` update."""

    # The run's state and checks, from AgentRunWorkflow and DecisionHandlers.
    _run_id: str
    _input: Any
    _status: RunStatus
    _pauses: int
    _requirements: list[RunRequirement]
    _members: Any

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

    def _from_my_team(self, request: TeamDecisions) -> None:
        team = self._input.team_run_id
        if team is None:
            raise InvalidInputError(f"run {self._run_id} is not a team member's run; it takes no {TEAM_DECIDE}")
        if request.team_run_id != team:
            raise InvalidInputError(
                f"run {self._run_id} works for team run {team}, not {request.team_run_id[:200]}; {TEAM_DECIDE} refused")

    @workflow.update(name=TEAM_DECIDE)
    def team_decide(self, raw: RawValue) -> RunOutput:
        """Decisions on this member's requirements made through its team: checked here again, recorded, applied."""
        try:
            request = decode(raw, TeamDecisions, f"run {self._run_id}: {TEAM_DECIDE}", limits.MAX_REQUEST_BYTES)
            self._from_my_team(request)
            self._decide_now(request.decisions, whole_pause=True, via="team")
        except HitlError as exc:
            raise refusal(exc) from None
        # Not absorbed, unlike a team_decision signal: the team learns of it from this run's report.
        return self._output()

    @team_decide.validator
    def _validate_team_decide(self, raw: RawValue) -> None:
        try:
            request = decode(raw, TeamDecisions, f"run {self._run_id}: {TEAM_DECIDE}", limits.MAX_REQUEST_BYTES)
            self._from_my_team(request)
        except HitlError as exc:
            raise refusal(exc) from None
        self._validate(request.decisions, whole_pause=True)
