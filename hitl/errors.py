"""The errors hitl raises: one base class, a few specific kinds.

Every message names the run, requirement or field concerned, so a log line alone says what to fix.
The service answers each with one status (``hitl.service.errors``); no call raises a raw
``RPCError`` or ``psycopg`` error. The tree (``tests/agno/test_exported_members.py`` checks it is this)::

    HitlError
    ├── ApprovalConflictError
    ├── ConfigurationError
    │   └── NotConfiguredError
    │       └── LinksNotConfiguredError
    ├── DatabaseUnavailableError
    ├── InvalidInputError
    │   ├── InvalidDecisionError
    │   └── PayloadTooLargeError
    ├── ModelRequestError
    ├── NotAuthenticatedError
    ├── PermissionDeniedError
    │   ├── DecisionNotAllowedError
    │   ├── LinkExpiredError
    │   ├── LinkInvalidError
    │   └── LinkUsedError
    ├── RequirementAlreadyResolvedError
    ├── RequirementNotFoundError
    ├── RunEndedError
    ├── RunExistsError
    ├── RunNotFoundError
    ├── TemporalUnavailableError
    ├── TooManyRequestsError
    ├── ToolDefinitionError
    └── UnresolvedRequirementsError
"""

from __future__ import annotations

__all__ = [
    "HitlError",
    "ConfigurationError",
    "ToolDefinitionError",
    "RunNotFoundError",
    "RunEndedError",
    "RunExistsError",
    "RequirementNotFoundError",
    "RequirementAlreadyResolvedError",
    "InvalidInputError",
    "InvalidDecisionError",
    "PayloadTooLargeError",
    "UnresolvedRequirementsError",
    "ModelRequestError",
    "ApprovalConflictError",
    "DecisionNotAllowedError",
    "TemporalUnavailableError",
    "DatabaseUnavailableError",
    "NotAuthenticatedError",
    "PermissionDeniedError",
    "LinkExpiredError",
    "LinkInvalidError",
    "LinkUsedError",
    "LinksNotConfiguredError",
    "NotConfiguredError",
    "TooManyRequestsError",
]


class HitlError(Exception):
    """Base class of every error hitl raises on purpose."""


class ConfigurationError(HitlError):
    """A setting is missing or malformed (environment variable, argument, agent definition)."""


class ToolDefinitionError(HitlError):
    """A function cannot be made into a tool as declared (bad user_input_fields, untyped arguments)."""


class RunNotFoundError(HitlError):
    """No run with this id exists in the Temporal namespace."""


class RunExistsError(HitlError):
    """A run with this id was started already (ids are never reused, even once the run has ended).
    The service answers 409."""


class RunEndedError(HitlError):
    """The run has already completed, failed or been cancelled, so it takes no more decisions."""


class RequirementNotFoundError(HitlError):
    """A decision names a requirement the run does not have."""


class RequirementAlreadyResolvedError(HitlError):
    """A decision names a requirement that was already decided (by another caller, or earlier)."""


class InvalidInputError(HitlError):
    """Input refused before it could do harm: text that cannot be stored (a NUL character), a filter
    of the wrong type, a value out of range. Nothing was changed."""


class InvalidDecisionError(InvalidInputError):
    """A decision is malformed: wrong kind for the requirement, or values that fail the tool's schema."""


class PayloadTooLargeError(InvalidInputError):
    """A decision, an input, a result or a model's answer is over one of hitl's size limits
    (``hitl.limits``); the message names the limit. Nothing was changed."""


class UnresolvedRequirementsError(HitlError):
    """continue_run was called while some requirements of the pause still have no decision."""


class ModelRequestError(HitlError):
    """The model server refused a request for good (a 4xx other than 408/409/429)."""


class ApprovalConflictError(HitlError):
    """The approval was already decided (someone decided first): who, when and how are attached when known."""

    def __init__(self, message: str, *, status: str | None = None, resolved_by: str | None = None,
                 resolved_at: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.resolved_by = resolved_by
        self.resolved_at = resolved_at


class PermissionDeniedError(HitlError):
    """The caller is known but may not do this: a scope its credential lacks, a change it may not make."""


class DecisionNotAllowedError(PermissionDeniedError):
    """The decider is not among the approvers, or is the requester barred by separation of duties."""


class LinkExpiredError(PermissionDeniedError):
    """A one-click link (``hitl.security.links``) whose expiry has passed, or the approval's deadline it was
    bounded by; the message says when. The service answers 410."""


class LinkInvalidError(PermissionDeniedError):
    """A one-click link the service did not make (tampered, cut short, signed with another key) or
    that does not fit its approval (other arguments, another run). The service answers 403."""


class LinkUsedError(PermissionDeniedError):
    """A one-click link that has already been used: each link decides once. The service answers 409."""


class NotConfiguredError(ConfigurationError):
    """This service is not set up for what was asked (links without ``HITL_LINK_SECRET``, the codec without
    ``HITL_ENCRYPTION_KEYS``...); the message names the setting. The service answers 503."""


class LinksNotConfiguredError(NotConfiguredError):
    """The service has no ``HITL_LINK_SECRET``, so it cannot check a one-click link. The service answers 503."""


class DatabaseUnavailableError(HitlError):
    """PostgreSQL could not be reached (or refused the connection). Nothing was read or changed; retry once
    it is back. The service answers 503."""


class NotAuthenticatedError(HitlError):
    """No credential, or one that proves nothing: malformed, unknown, revoked, expired, badly signed."""


class TemporalUnavailableError(HitlError):
    """Temporal could not be reached (or went away during the call).

    For a decision, the message says whether it may have been recorded: read the run with
    ``get_run`` before sending it again (a decision already applied is refused, never applied twice).
    """


class TooManyRequestsError(HitlError):
    """The caller has been refused too often lately (decisions it may not make, approvals it may not
    see): it must wait ``retry_after`` seconds. Nothing was changed. The service answers 429."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
