"""hitl's errors as HTTP answers, in one place: each ``HitlError`` kind has its status code."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from hitl import errors

log = logging.getLogger("hitl.service")

# The first matching class wins: subclasses before their bases.
_STATUS: list[tuple[type[errors.HitlError], int]] = [
    (errors.NotAuthenticatedError, 401),
    (errors.LinkExpiredError, 410),
    (errors.LinkUsedError, 409),
    (errors.LinkInvalidError, 403),
    (errors.PermissionDeniedError, 403),
    (errors.RunNotFoundError, 404),
    (errors.RequirementNotFoundError, 404),
    (errors.ApprovalConflictError, 409),
    (errors.RequirementAlreadyResolvedError, 409),
    (errors.RunEndedError, 409),
    (errors.PayloadTooLargeError, 413),
    (errors.InvalidInputError, 422),
    (errors.UnresolvedRequirementsError, 422),
    (errors.LinksNotConfiguredError, 503),
    (errors.ConfigurationError, 422),
    (errors.TemporalUnavailableError, 503),
    (errors.TooManyRequestsError, 429),
]


class ErrorBody(BaseModel):
    """Every error's body: ``detail`` says what and why, naming the run, approval or field."""

    detail: str
    error: str
    """The hitl error kind (``ApprovalConflictError``, ``DecisionNotAllowedError``...)."""
    status: str | None = None
    """409 on an approval: the status it was decided to."""
    resolved_by: str | None = None
    resolved_at: int | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (401, "No credentials, or credentials that prove nothing (unknown, revoked, expired, badly signed)."),
        (403, "Authenticated, but without the scope this needs, or not allowed by the approval's policy."),
        (404, "Unknown, or not visible to the caller."),
        (413, "Over hitl's size limits (the message names the limit)."),
    )
}


def status_of(exc: errors.HitlError) -> int:
    return next((code for kind, code in _STATUS if isinstance(exc, kind)), 502)


def body_of(exc: errors.HitlError) -> dict[str, Any]:
    body = ErrorBody(detail=str(exc), error=type(exc).__name__)
    if isinstance(exc, errors.ApprovalConflictError):
        body.status, body.resolved_by, body.resolved_at = exc.status, exc.resolved_by, exc.resolved_at
    return body.model_dump(exclude_none=True)


def response_of(exc: errors.HitlError) -> JSONResponse:
    code = status_of(exc)
    if code >= 500:
        log.warning("%s: %s", type(exc).__name__, exc)
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    if isinstance(exc, errors.TooManyRequestsError):
        headers = {"Retry-After": str(int(exc.retry_after))}
    return JSONResponse(body_of(exc), status_code=code, headers=headers)


def install(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.HitlError)
        return response_of(exc)

    app.add_exception_handler(errors.HitlError, handle)
