"""The agents this process knows, by name.

Workers look agents up here to run their model calls and tools, and workflow code (passed
through the sandbox) to validate decisions against a tool's schema. Agents register themselves
when they are created, so importing the module that defines them is enough.

A run is bound to its agent's *name*: the worker that takes it up uses whatever definition has
that name now, so a redeploy with new instructions, tools or model goes on with paused runs. Two
*different* definitions under one name would make a run's meaning depend on which one a worker
imported last: that is a ``ConfigurationError``. The same definition registered again (a module
imported twice, or under two names) replaces the first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hitl.errors import ConfigurationError
from hitl.store import agno

if TYPE_CHECKING:
    from hitl.agent import Agent

_agents: dict[str, Agent] = {}
_unnamed: list[Agent] = []
"""Agents whose default name (module and variable) can only be read once their module has run."""


def register(agent: Agent) -> None:
    if agent.has_explicit_name:
        _add(agent.name, agent)
    else:
        _unnamed.append(agent)


def _add(name: str, agent: Agent) -> None:
    known = _agents.get(name)
    if known is not None and known is not agent and known.definition() != agent.definition():
        raise ConfigurationError(
            f"two different agents are named {name!r} (defined in {known.defined_in} and {agent.defined_in}); "
            "a run is bound to its agent's name, so give each agent its own name="
        )
    _agents[name] = agent


def resolve_names() -> None:
    """Name every agent registered without ``name=`` (after their modules have run); a worker does it at start.

    Raises:
        ConfigurationError: two different agents end up with one name.
    """
    for agent in list(_unnamed):
        try:
            name = agent.name
        except ConfigurationError:
            continue  # not bound at the top level of a module (yet): it cannot be served by name
        _unnamed.remove(agent)
        _add(name, agent)


def known() -> list[Agent]:
    """Every agent this process has made, named or not yet."""
    return [*_agents.values(), *_unnamed]


def serves(name: str) -> bool:
    """Whether this process defines an agent of that name (workflow code asks before taking a run)."""
    return name in _agents


def names() -> list[str]:
    return sorted(_agents)


def find(name: str) -> Agent | None:
    """The agent of that name if this process defines it, else None."""
    try:
        return get(name)
    except ConfigurationError:
        return None


def get(name: str) -> Agent:
    agent = _agents.get(name)
    if agent is None:
        resolve_names()
        agent = _agents.get(name)
    if agent is None:
        raise ConfigurationError(
            f"agent {name!r} is not defined in this worker; start it with "
            f"`hitl worker --agents <module defining it>` (known: {sorted(_agents) or 'none'})"
        )
    return agent


def _teams_with(member: str, db: Any = None) -> list[str]:
    """The teams this process defines that have a member of that name; with ``db``, those recording into it first."""
    found = []
    for name in names():
        try:
            agent = get(name)
        except Exception:  # noqa: BLE001 - a definition this process cannot give is no team of it
            continue
        members: dict[str, Agent] = getattr(agent, "members", {})  # a Team's (this room cannot import Team)
        if agent.is_team and member in members:
            found.append((agent, members[member]))
    if db is not None and len(found) > 1:
        own = [(t, m) for t, m in found if t.db is db or m.db is db]
        found = own or found
    return [t.name for t, _ in found]


def team_name(agent_name: str, team_run_id: str | None, db: Any = None) -> str | None:
    """The team an approval was made for, as this process defines its agents: a team's own approval
    (its run's agent is a Team), or a member's (``team_run_id`` set) whose team is the one team here
    with a member of that name. None for an agent's own, or when this process cannot tell."""
    if team_run_id is None:
        if not serves(agent_name):
            return None
        try:
            return agent_name if get(agent_name).is_team else None
        except Exception:  # noqa: BLE001
            return None
    teams = _teams_with(agent_name, db)
    return teams[0] if len(teams) == 1 else None


agno.name_teams_with(team_name)
