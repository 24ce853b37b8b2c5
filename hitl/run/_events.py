"""The events a streamed call yields, built from the durable :class:`RunOutput` it returned.

A hitl run lives in Temporal; ``run(..., stream=True)`` waits for the leg of the run it started
(from its start, or from a ``continue_run``, to the next pause or end) and then yields what
Agno's stream would have yielded for that leg. :func:`events_for` is that translation, a pure
function of the output.

What Agno yields, and so what this returns:

- ``stream_events=False`` (``stream=True`` alone): the answer's text as a ``RunContent`` and, on
  a pause, a ``RunPaused`` (always). A failed run gives ``RunError``; a cancelled one
  ``RunCancelled`` then ``RunCompleted`` (Agno sends those whatever ``stream_events`` says).
- ``stream_events=True``: ``RunStarted`` (``RunContinued`` for a continue), then for a continue
  the tool calls its decisions let run (``ToolCallStarted``/``ToolCallCompleted``), the
  ``RunContent``, then ``RunPaused``, or ``RunContentCompleted`` and ``RunCompleted``, or the
  error or cancellation as above.
- For a team (``team=True``) the team classes of :mod:`hitl.run.team` ("TeamRunContent"...).
  When the pause is a member's, each paused member's agent ``RunPausedEvent`` (its name, its
  run id, ``parent_run_id`` the team run) comes before the team's ``RunPausedEvent``.

The paused event's ``content`` is the run's own text if the model wrote any before pausing,
otherwise Agno's paused text (:func:`agent_paused_content`, :func:`team_paused_content`).

What the output cannot tell is not invented: the model's text arrives as one ``RunContent``,
not as deltas; a member's own text and tool calls are not among the team's events; tool calls
the model made without a pause, and those of a leg that ends in a new pause, are not told.
"""

from __future__ import annotations

from typing import Any

from hitl.run import RunOutput, RunRequirement, RunStatus
from hitl.run import agent as agent_events
from hitl.run import team as team_events

__all__ = ["events_for", "agent_paused_content", "team_paused_content", "paused_content", "entity_id"]

_AGENT_PAUSED = {
    "confirmation": "I have tools to execute, but I need confirmation.",
    "user_input": "I have tools to execute, but I need user input.",
    "external_execution": "I have tools to execute, but it needs external execution.",
}
_TEAM_NEEDS = {
    "confirmation": "requires confirmation",
    "user_input": "requires user input",
    "external_execution": "requires external execution",
}


def entity_id(name: str) -> str:
    """The id Agno derives from an agent's or team's name ("Admin Agent" -> "admin-agent")."""
    return name.lower().replace(" ", "-").replace("_", "-")


def _pending(requirements: list[RunRequirement]) -> list[RunRequirement]:
    return [r for r in requirements if r.resolution is None]


def agent_paused_content(requirements: list[RunRequirement]) -> str:
    """Agno's text for an agent's pause: what the last undecided call waits for.

    "I have tools to execute, but I need confirmation." (or "... but I need user input.",
    "... but it needs external execution."); empty when nothing waits.
    """
    pending = _pending(requirements)
    return _AGENT_PAUSED.get(pending[-1].kind, "") if pending else ""


def team_paused_content(requirements: list[RunRequirement]) -> str:
    """Agno's text for a team's pause: one line per undecided call, with whose it is.

    "Team run paused. The following require input:\\n- <member or 'team'>: <tool> requires
    confirmation" (or "user input", "external execution"); "Team run paused." when nothing waits.
    """
    pending = _pending(requirements)
    if not pending:
        return "Team run paused."
    lines = [f"- {r.member_agent_name or 'team'}: {r.tool_execution.tool_name} {_TEAM_NEEDS[r.kind]}" for r in pending]
    return "Team run paused. The following require input:\n" + "\n".join(lines)


def paused_content(output: RunOutput, *, team: bool | None = None) -> str:
    """The text of a paused run: its own content, or Agno's paused text when it has none.

    ``team=None`` takes a run with a member's requirement for a team's (a team pausing on its
    own tool reads as an agent's then: the output does not say it is a team's).
    """
    if output.content:
        return output.content
    if team is None:
        team = any(r.member_agent_name for r in output.requirements)
    return team_paused_content(output.requirements) if team else agent_paused_content(output.requirements)


def _ran_on_continue(output: RunOutput) -> list[RunRequirement]:
    """The calls a continue let run: its decided requirements, except rejections and results given."""
    return [r for r in output.requirements if r.resolution in ("confirmed", "input_provided")]


def _member_pauses(output: RunOutput, session_id: str | None) -> list[agent_events.RunPausedEvent]:
    """One agent ``RunPausedEvent`` per paused member, in the order their requirements come."""
    groups: dict[str, list[RunRequirement]] = {}
    for r in output.requirements:
        if r.member_agent_name:
            groups.setdefault(r.member_run_id or r.member_agent_name, []).append(r)
    events = []
    for key, reqs in groups.items():
        member = reqs[0].member_agent_name or ""
        events.append(agent_events.RunPausedEvent(
            agent_id=entity_id(member), agent_name=member, run_id=reqs[0].member_run_id or key,
            parent_run_id=output.run_id, session_id=session_id, content=agent_paused_content(reqs),
            tools=[r.tool_execution for r in reqs], requirements=reqs))
    return events


def events_for(output: RunOutput, *, team: bool, continued: bool, stream_events: bool, name: str) -> list[Any]:
    """The events Agno's ``run``/``continue_run(stream=True)`` yields for this leg of the run.

    Args:
        output: What the leg's call returned (from the start, or a continue, to the next pause or end).
        team: A team's run: the classes of :mod:`hitl.run.team`, members' pauses before the team's.
        continued: The leg began with a ``continue_run``: ``RunContinued`` instead of ``RunStarted``.
        stream_events: Agno's ``stream_events``: the events around the content, not only it.
        name: The agent's or team's name (``agent_name``/``team_name``; the id derives from it).

    Returns:
        Agent events (:mod:`hitl.run.agent`) or team events (:mod:`hitl.run.team`), in order. The
        paused event's ``requirements`` are the output's own objects: deciding them there is
        deciding them on the output.
    """
    name = name or output.agent_name
    kinds: Any = team_events if team else agent_events
    ids: dict[str, Any] = (
        {"team_id": entity_id(name), "team_name": name} if team else {"agent_id": entity_id(name), "agent_name": name})
    common = {**ids, "run_id": output.run_id, "session_id": output.session_id}
    events: list[Any] = []

    if stream_events:
        events.append(kinds.RunContinuedEvent(**common) if continued else kinds.RunStartedEvent(**common))
        if continued and output.status in (RunStatus.completed, RunStatus.error, RunStatus.cancelled):
            for r in _ran_on_continue(output):
                where, whose = kinds, common
                if team and r.member_agent_name:  # a member's call: the member's own (agent) events
                    where, whose = agent_events, {
                        "agent_id": entity_id(r.member_agent_name), "agent_name": r.member_agent_name,
                        "run_id": r.member_run_id, "parent_run_id": output.run_id, "session_id": output.session_id}
                events.append(where.ToolCallStartedEvent(**whose, tool=r.tool_execution))
                events.append(where.ToolCallCompletedEvent(**whose, tool=r.tool_execution, content=r.tool_execution.result))

    if output.status == RunStatus.paused:
        text = paused_content(output, team=team)
        generated = team_paused_content(output.requirements) if team else agent_paused_content(output.requirements)
        if output.content and output.content != generated:
            events.append(kinds.RunContentEvent(**common, content=output.content))
        if team:
            events.extend(_member_pauses(output, output.session_id))
        events.append(kinds.RunPausedEvent(
            **common, content=text, tools=[r.tool_execution for r in output.requirements],
            requirements=output.requirements))
    elif output.status == RunStatus.completed:
        if output.content:
            events.append(kinds.RunContentEvent(**common, content=output.content))
        if stream_events:
            events.append(kinds.RunContentCompletedEvent(**common))
            events.append(kinds.RunCompletedEvent(
                **common, content=output.content, metadata=getattr(output, "metadata", None)))
    elif output.status == RunStatus.error:
        events.append(kinds.RunErrorEvent(**common, content=output.error or output.content))
    elif output.status == RunStatus.cancelled:
        reason = output.content or output.error or f"Run {output.run_id} was cancelled"
        events.append(kinds.RunCancelledEvent(**common, reason=reason, content=reason))
        events.append(kinds.RunCompletedEvent(**common, content=reason, metadata=getattr(output, "metadata", None)))
    # running (no worker serves it yet): the start event alone, if any; the run has not moved.
    return events
