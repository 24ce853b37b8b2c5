"""The agent an activity serves, or a failure that sends the activity to a worker that has it."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from hitl._core import registry
from hitl.agent import Agent
from hitl.errors import ConfigurationError


def agent_named(name: str) -> Agent:
    try:
        return registry.get(name)
    except ConfigurationError as exc:
        # Retryable: on a task queue shared with workers that lack the agent, another attempt may
        # reach one that has it, and a redeployed worker will. Nothing has run yet.
        raise ApplicationError(str(exc), type="AgentNotServed") from None
