"""``Team``: a leader model that delegates tasks to member agents, all in one durable run.

The team run is a workflow like an agent's; each delegation runs the member as a child
workflow with its own run id. A member's pause pauses the team, and decisions sent to the team
run (``continue_run``, or the signals, with the ids the team shows) reach the member.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from temporalio.client import Client

from hitl.agent import Agent
from hitl.db.postgres import PostgresDb
from hitl.errors import ConfigurationError
from hitl.models.openai import OpenAIModel
from hitl.notify import Notifier
from hitl.policy import ApprovalRule
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

    ``markdown``, ``expected_output``, ``pre_hooks``, ``post_hooks``, ``debug_mode``, ``telemetry``,
    ``session_id``, ``user_id``, ``session_state``, ``dependencies``, ``add_history_to_context``,
    ``num_history_runs`` and ``num_history_messages`` are as on :class:`hitl.Agent` (hooks are called
    with ``team=`` rather than ``agent=``; the history is the leader's; a member's tools see the team
    run's ``run_context``). Every other argument is as on :class:`hitl.Agent`. Members run on the
    team's task queue.

    Raises:
        ConfigurationError: no members, a member that is not an Agent, or two with one name.
    """

    is_team: ClassVar[bool] = True

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
