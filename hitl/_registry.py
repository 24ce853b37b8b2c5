"""The agents this process knows, by name.

Workers look agents up here to run their model calls and tools, and workflow code (passed
through the sandbox) to validate decisions against a tool's schema. Agents register themselves
when they are created, so importing the module that defines them is enough.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hitl.errors import ConfigurationError

if TYPE_CHECKING:
    from hitl.agent import Agent

_agents: dict[str, Agent] = {}


def register(agent: Agent) -> None:
    # A module imported twice (or re-run in a notebook) re-registers: the newest definition wins.
    _agents[agent.name] = agent


def get(name: str) -> Agent:
    try:
        return _agents[name]
    except KeyError:
        raise ConfigurationError(
            f"agent {name!r} is not defined in this worker; start it with "
            f"`python worker.py --agents <module defining it>` (known: {sorted(_agents) or 'none'})"
        ) from None
