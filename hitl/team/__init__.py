"""``Team``: a leader model that delegates tasks to member agents, all in one durable run.

The team run is a workflow like an agent's; each delegation runs the member as a child
workflow with its own run id. A member's pause pauses the team, and decisions sent to the team
run (``continue_run``, or the signals, with the ids the team shows) reach the member.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from hitl import errors
from hitl._core import runs as _runs
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
from hitl.agent import Agent
from hitl.db.postgres import PostgresDb
from hitl.decisions import ContinueRunRequest, Decision
from hitl.errors import ConfigurationError
from hitl.models.openai import OpenAIModel
from hitl.notify import Notifier
from hitl.policy import ApprovalRule
from hitl.run import RunOutput
from hitl.security.signing import Signer
from hitl.tools import Tool, Toolkit

__all__ = ["Team", "DELEGATE_TOOL"]

DELEGATE_TOOL = "delegate_task_to_member"


class Team(Agent):
    """Several agents in one durable run, led by a model that delegates to them.

    Args:
        agents: The members (``members=`` is the same); each needs a distinct ``name``.
        model: The leader's model (default ``OpenAIChat("gpt-4o")``).
        name: The name its runs are bound to; defaults, as an Agent's, to ``<module>.<variable>``.
        db: Where approvals are recorded, the members' included (a member with its own ``db``
            records there).
        instructions: The leader's own instructions, after the list of members.
        tools: Tools the leader calls itself, beside delegating.
        markdown, expected_output, pre_hooks, post_hooks, debug_mode, telemetry, session_id, user_id,
            session_state, dependencies, add_history_to_context, num_history_runs, num_history_messages:
            as on :class:`hitl.Agent` (hooks are called with ``team=`` rather than ``agent=``; the
            history is the leader's; a member's tools see the team run's ``run_context``).

    Every other argument is as on :class:`hitl.Agent`. Members run on the team's task queue.

    Raises:
        ConfigurationError: no members, a member that is not an Agent, or two with one name.
    """

    def __init__(
        self,
        agents: Sequence[Agent] | None = None,
        *,
        members: Sequence[Agent] | None = None,
        model: OpenAIModel | None = None,
        name: str | None = None,
        db: PostgresDb | None = None,
        instructions: str | Sequence[str] | None = None,
        tools: Sequence[Tool | Toolkit | Callable[..., Any]] | None = None,
        role: str | None = None,
        description: str | None = None,
        task_queue: str | None = None,
        temporal_address: str | None = None,
        namespace: str | None = None,
        history_event_limit: int = 10_000,
        client: Client | None = None,
        notifiers: Sequence[Notifier] | None = None,
        approval_rules: Sequence[ApprovalRule] | None = None,
        signer: Signer | None = None,
        markdown: bool = False,
        expected_output: str | None = None,
        pre_hooks: Sequence[Callable[..., Any]] | None = None,
        post_hooks: Sequence[Callable[..., Any]] | None = None,
        debug_mode: bool = False,
        telemetry: bool = True,
        session_id: str | None = None,
        user_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        dependencies: dict[str, Any] | None = None,
        add_history_to_context: bool = False,
        num_history_runs: int | None = None,
        num_history_messages: int | None = None,
    ) -> None:
        if agents is not None and members is not None:
            raise ConfigurationError("Team takes agents= or members=, not both")
        found = list(agents if agents is not None else members or [])
        if not found:
            raise ConfigurationError(f"Team {name or ''}: give it at least one member (agents=[...])")
        for m in found:
            if isinstance(m, Team):
                # A member team's own members would pause unseen by this one: refuse rather than hang.
                raise ConfigurationError(f"Team {name or ''}: member {m.name!r} is a Team; teams of teams are not supported")
            if not isinstance(m, Agent):
                raise ConfigurationError(f"Team {name or ''}: members must be Agents, got {type(m).__name__}")
        names = [m.name for m in found]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigurationError(f"Team {name or ''}: two members are named {twice}; give each a distinct name")
        self.members: dict[str, Agent] = {m.name: m for m in found}
        own = instructions if isinstance(instructions, str) or instructions is None else "\n".join(instructions)
        super().__init__(
            model,
            name=name,
            tools=[_delegation_tool(found), *(tools or [])],
            db=db,
            instructions=_leader_instructions(found, own),
            role=role,
            description=description,
            task_queue=task_queue,
            temporal_address=temporal_address,
            namespace=namespace,
            history_event_limit=history_event_limit,
            client=client,
            notifiers=notifiers,
            approval_rules=approval_rules,
            signer=signer,
            markdown=markdown,
            expected_output=expected_output,
            pre_hooks=pre_hooks,
            post_hooks=post_hooks,
            debug_mode=debug_mode,
            telemetry=telemetry,
            session_id=session_id,
            user_id=user_id,
            session_state=session_state,
            dependencies=dependencies,
            add_history_to_context=add_history_to_context,
            num_history_runs=num_history_runs,
            num_history_messages=num_history_messages,
        )
        self.team_instructions = own

    def __repr__(self) -> str:
        return f"Team(name={self._name or '(unnamed)'!r}, members={list(self.members)})"


def _leader_instructions(members: list[Agent], own: str | None) -> str:
    lines = [
        "You lead a team. Delegate each task to the member best suited to it with "
        f"{DELEGATE_TOOL}(member_id, task); you may delegate to several members at once. "
        "Then write the final answer from their replies.",
        "Members:",
        *(f"- {m.name}: {m.role or m.description or 'no role given'}" for m in members),
    ]
    if own:
        lines += ["", own]
    return "\n".join(lines)


def _delegation_tool(members: list[Agent]) -> Tool:
    names = ", ".join(m.name for m in members)

    def delegate_task_to_member(member_id: str, task: str) -> str:
        """Give a task to one member of the team; returns the member's answer.

        Args:
            member_id: The member's name, one of the team's members.
            task: What the member should do, with everything it needs to know.
        """
        # The run workflow intercepts this call and runs the member as a child workflow.
        raise ConfigurationError("delegate_task_to_member runs only inside a team run")

    made = Tool(delegate_task_to_member, description=f"Give a task to one member of the team ({names}); "
                                                       "returns the member's answer.")
    made.delegates_to = {m.name: m for m in members}
    return made


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
            progress = await _runs._update(client, member, TEAM_CONTINUE, sent, route.requirement_ids,
                                           result_type=MemberProgress)
        except errors.HitlError as exc:
            if not _lacks_handler(exc):
                raise
            # ... unless its worker predates team_continue: then as before, and the team hears from the member.
            await _runs._update(client, member, TEAM_DECIDE, sent, route.requirement_ids)
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
                return await _runs._update(client, run_id, MEMBER_REPORT, report, [])
            except errors.HitlError as exc:
                # The team already took the member's signal and moved on, or its worker predates member_report.
                if type(exc) is not errors.InvalidInputError and not _lacks_handler(exc):
                    raise
        return await _runs._update(client, run_id, "wait_for_progress", route.after_pause, [])
    except errors.RunEndedError:
        return await _runs.get(client, run_id)  # the member's own report got there first, and the team has ended


def _lacks_handler(exc: errors.HitlError) -> bool:
    """The run's worker has no handler by that name (an older hitl): the SDK's refusal says so."""
    return type(exc) is errors.HitlError and "expected but not found" in str(exc)
