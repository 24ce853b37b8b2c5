"""hitl: durable human-in-the-loop for LLM agents, on Temporal.

Agno's human-in-the-loop API with each run a Temporal workflow: pauses survive crashes and
deploys, and decisions may come from any process or any Temporal client.

The names below load on first use. Temporal's sandbox imports this package afresh for every
run it starts or replays (it is the parent of ``hitl.workflows``): an eager import here would
load the whole client side into every run, and give the sandbox its own, empty, agent registry.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hitl.agent import Agent
    from hitl.approval import ApprovalType, approval
    from hitl.db.postgres import PostgresDb
    from hitl.decisions import Confirm, ContinueRunRequest, ProvideInput, ProvideResult, Reject
    from hitl.errors import (
        ApprovalConflictError,
        ConfigurationError,
        DatabaseUnavailableError,
        DecisionNotAllowedError,
        HitlError,
        InvalidDecisionError,
        InvalidInputError,
        ModelRequestError,
        NotAuthenticatedError,
        PayloadTooLargeError,
        PermissionDeniedError,
        RequirementAlreadyResolvedError,
        RequirementNotFoundError,
        RunEndedError,
        RunExistsError,
        RunNotFoundError,
        TemporalUnavailableError,
        ToolDefinitionError,
        UnresolvedRequirementsError,
    )
    from hitl.models.openai import OpenAIChat, OpenAIResponses
    from hitl.run import RunOutput, RunRequirement, RunStatus, ToolExecution, UserInputField
    from hitl.team import Team
    from hitl.tools import Tool, tool

_WHERE = {
    "Agent": "hitl.agent",
    "Team": "hitl.team",
    "ApprovalType": "hitl.approval",
    "approval": "hitl.approval",
    "PostgresDb": "hitl.db.postgres",
    "OpenAIChat": "hitl.models.openai",
    "OpenAIResponses": "hitl.models.openai",
    "Tool": "hitl.tools",
    "tool": "hitl.tools",
    **{name: "hitl.decisions" for name in ("Confirm", "ContinueRunRequest", "ProvideInput", "ProvideResult", "Reject")},
    **{name: "hitl.run" for name in ("RunOutput", "RunRequirement", "RunStatus", "ToolExecution", "UserInputField")},
    **{name: "hitl.errors" for name in (
        "ApprovalConflictError", "ConfigurationError", "DecisionNotAllowedError", "HitlError", "InvalidDecisionError",
        "InvalidInputError", "ModelRequestError", "NotAuthenticatedError", "PayloadTooLargeError", "PermissionDeniedError",
        "RequirementAlreadyResolvedError",
        "RequirementNotFoundError", "RunEndedError", "RunNotFoundError", "TemporalUnavailableError",
        "ToolDefinitionError", "UnresolvedRequirementsError", "DatabaseUnavailableError", "RunExistsError",
    )},
}

__all__ = [
    "Agent",
    "ApprovalConflictError",
    "ApprovalType",
    "ConfigurationError",
    "Confirm",
    "ContinueRunRequest",
    "DatabaseUnavailableError",
    "DecisionNotAllowedError",
    "HitlError",
    "InvalidDecisionError",
    "InvalidInputError",
    "ModelRequestError",
    "NotAuthenticatedError",
    "OpenAIChat",
    "OpenAIResponses",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PostgresDb",
    "ProvideInput",
    "ProvideResult",
    "Reject",
    "RequirementAlreadyResolvedError",
    "RequirementNotFoundError",
    "RunEndedError",
    "RunExistsError",
    "RunNotFoundError",
    "RunOutput",
    "RunRequirement",
    "RunStatus",
    "Team",
    "TemporalUnavailableError",
    "Tool",
    "ToolDefinitionError",
    "ToolExecution",
    "UnresolvedRequirementsError",
    "UserInputField",
    "approval",
    "tool",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'hitl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


# Modules that moved into rooms (issue 23) keep their old paths for a while: importing one gives the module
# at its new place (the same object) and a DeprecationWarning naming it.
MOVED_MODULES = {
    "hitl.signing": "hitl.security.signing",
    "hitl.tokens": "hitl.security.tokens",
    "hitl.oidc": "hitl.security.oidc",
    "hitl.links": "hitl.security.links",
    "hitl.codec": "hitl.security.codec",
    "hitl.telemetry": "hitl.observability.telemetry",
    "hitl.visibility": "hitl.observability.visibility",
    "hitl.versioning": "hitl.worker.versioning",
    "hitl.devstack": "hitl.dev.stack",
    "hitl.config": "hitl.settings",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds a moved module under its old name; loads it as the new module itself."""

    hitl_moved_modules = True  # the mark that keeps one finder per interpreter (this package may be imported again)

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        return importlib.util.spec_from_loader(name, self) if name in MOVED_MODULES else None

    def create_module(self, spec: Any) -> Any:
        new = MOVED_MODULES[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module: Any) -> None:
        """Nothing to run: the module is the one at its new place, already loaded."""


if not any(getattr(finder, "hitl_moved_modules", False) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
