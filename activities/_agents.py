"""The agent an activity serves, or a failure that tells Temporal not to retry."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from hitl import _registry
from hitl.agent import Agent
from hitl.errors import ConfigurationError


def agent_named(name: str) -> Agent:
    try:
        return _registry.get(name)
    except ConfigurationError as exc:
        # A worker without the agent will not grow it by retrying: fail fast and say how to fix it.
        raise ApplicationError(str(exc), type="ConfigurationError", non_retryable=True) from None
