"""The errors hitl raises: one base class, a few specific kinds.

Every message names the run, requirement or field concerned, so a log line alone says what to fix.
"""

from __future__ import annotations

__all__ = [
    "HitlError",
    "ConfigurationError",
    "ToolDefinitionError",
    "RunNotFoundError",
    "RunEndedError",
    "RequirementNotFoundError",
    "RequirementAlreadyResolvedError",
    "InvalidDecisionError",
    "UnresolvedRequirementsError",
    "ModelRequestError",
    "ApprovalConflictError",
    "DecisionNotAllowedError",
]


class HitlError(Exception):
    """Base class of every error hitl raises on purpose."""


class ConfigurationError(HitlError):
    """A setting is missing or malformed (environment variable, argument, agent definition)."""


class ToolDefinitionError(HitlError):
    """A function cannot be made into a tool as declared (bad user_input_fields, untyped arguments)."""


class RunNotFoundError(HitlError):
    """No run with this id exists in the Temporal namespace."""


class RunEndedError(HitlError):
    """The run has already completed, failed or been cancelled, so it takes no more decisions."""


class RequirementNotFoundError(HitlError):
    """A decision names a requirement the run does not have."""


class RequirementAlreadyResolvedError(HitlError):
    """A decision names a requirement that was already decided (by another caller, or earlier)."""


class InvalidDecisionError(HitlError):
    """A decision is malformed: wrong kind for the requirement, or values that fail the tool's schema."""


class UnresolvedRequirementsError(HitlError):
    """continue_run was called while some requirements of the pause still have no decision."""


class ModelRequestError(HitlError):
    """The model server refused a request for good (a 4xx other than 408/409/429)."""


class ApprovalConflictError(HitlError):
    """update_approval found the approval no longer in the expected status: someone decided first."""


class DecisionNotAllowedError(HitlError):
    """The decider is not among the approvers, or is the requester barred by separation of duties."""
