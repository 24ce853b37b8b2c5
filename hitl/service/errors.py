"""Every error the service answers, in one shape: RFC 9457 problem details (``application/problem+json``).

Each ``HitlError`` kind has its status code (below); FastAPI's request validation, Starlette's
"no such route", the edge's 413 and 408 and an unexpected failure (500) answer in the same shape, so
a client reads every error one way::

    {"type": "urn:hitl:error:ApprovalConflictError", "title": "Conflict", "status": 409,
     "detail": "approval 'run-1/req-1-call_0_0' was already decided: approved by bob at ...",
     "instance": "/approvals/run-1/req-1-call_0_0/resolve", "error": "ApprovalConflictError",
     "approval_status": "approved", "resolved_by": "bob", "resolved_at": 1796650000}

``error`` names the hitl error kind (``hitl.errors``); ``errors`` lists each field a request failed
validation on; a 409 on an approval carries who decided it, when and to what; a 429 when to retry.
The OpenAPI document declares this schema for every status each route can answer
(:func:`install_openapi`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from hitl import errors
from hitl.service.redaction import redact

log = logging.getLogger("hitl.service")
MEDIA_TYPE = "application/problem+json"

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
    (errors.RunExistsError, 409),
    (errors.PayloadTooLargeError, 413),
    (errors.InvalidInputError, 422),
    (errors.UnresolvedRequirementsError, 422),
    (errors.NotConfiguredError, 503),
    (errors.ConfigurationError, 422),
    (errors.TemporalUnavailableError, 503),
    (errors.DatabaseUnavailableError, 503),
    (errors.TooManyRequestsError, 429),
]
TITLES = {400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          408: "Request timeout", 409: "Conflict", 410: "Gone", 413: "Content too large", 422: "Invalid input",
          429: "Too many requests", 500: "Internal error", 502: "Bad gateway", 503: "Unavailable"}
MEANINGS = {
    400: "The body is not JSON, or not UTF-8.",
    401: "No credentials, or credentials that prove nothing (unknown, revoked, expired, badly signed).",
    403: "Authenticated, but without the scope this needs, or refused by the approval's policy.",
    404: "Unknown, or not visible to the caller.",
    408: "The request's headers or body took too long to arrive.",
    409: "A conflict: already decided (who, when and to what are in the body), or the run has ended.",
    410: "Expired.",
    413: "Over a size limit (the body over the service's limit, or a decision over hitl's; the detail names it).",
    422: "The request fails its schema (``errors`` lists each field), or does not fit the approval or run.",
    429: "Refused too often lately, or too many streams open: retry after ``Retry-After`` seconds.",
    500: "An unexpected failure; the service logged it.",
    503: "PostgreSQL or Temporal unreachable, no answer in time from a run no worker serves now (the decision may still be "
         "applied: read the run before sending it again), or a feature this service is not configured for.",
}


class FieldProblem(BaseModel):
    loc: list[str | int] = Field(description="Where: body, query, path or header, then the field's path.")
    msg: str
    type: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details, with hitl's extensions."""

    type: str = Field(description="urn:hitl:error:<kind>: what kind of problem (the kind is ``error``).")
    title: str = Field(description="A short summary of the status.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What and why, naming the run, approval or field.")
    instance: str | None = Field(default=None, description="The request's path.")
    error: str = Field(description="The hitl error kind (hitl.errors): ApprovalConflictError, "
                                   "DecisionNotAllowedError, InvalidInputError...")
    errors: list[FieldProblem] | None = Field(default=None, description="422: each field the request failed on.")
    approval_status: str | None = Field(default=None, description="409 on an approval: what it was decided to.")
    resolved_by: str | None = Field(default=None, description="409 on an approval: who decided it.")
    resolved_at: int | None = Field(default=None, description="409 on an approval: when (epoch seconds).")
    retry_after: int | None = Field(default=None, description="429: seconds to wait (also the Retry-After header).")


def status_of(exc: errors.HitlError) -> int:
    return next((code for kind, code in _STATUS if isinstance(exc, kind)), 502)


def problem(status: int, kind: str, detail: str, *, instance: str | None = None, headers: Mapping[str, str] | None = None,
            **extensions: Any) -> JSONResponse:
    """A problem-details answer."""
    body = Problem(type=f"urn:hitl:error:{kind}", title=TITLES.get(status, "Error"), status=status, detail=detail,
                   instance=redact(instance) if instance else None, error=kind, **extensions)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers, media_type=MEDIA_TYPE)


def response_of(exc: errors.HitlError, instance: str | None = None) -> JSONResponse:
    code = status_of(exc)
    if code >= 500:
        log.warning("%s: %s", type(exc).__name__, exc)
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    extensions: dict[str, Any] = {}
    if isinstance(exc, errors.ApprovalConflictError):
        extensions = {"approval_status": exc.status, "resolved_by": exc.resolved_by, "resolved_at": exc.resolved_at}
    if isinstance(exc, errors.TooManyRequestsError):
        headers = {"Retry-After": str(int(exc.retry_after))}
        extensions = {"retry_after": int(exc.retry_after)}
    return problem(code, type(exc).__name__, str(exc), instance=instance, headers=headers, **extensions)


def _where(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts[1:]) or (parts[0] if parts else "body")


def install(app: FastAPI) -> None:
    """Answer every error as problem details."""

    async def hitl_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.HitlError)
        return response_of(exc, request.url.path)

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        found = [FieldProblem(loc=[p if isinstance(p, int) else str(p) for p in e.get("loc", ())], msg=str(e.get("msg", "")),
                              type=str(e.get("type", ""))) for e in exc.errors()]
        detail = "; ".join(f"{_where(f.loc)}: {f.msg}" for f in found[:10]) or "the request fails its schema"
        return problem(422, "InvalidInputError", detail, instance=request.url.path, errors=found)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        kind = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        return problem(exc.status_code, kind, str(exc.detail), instance=request.url.path, headers=exc.headers)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed unexpectedly", request.method, redact(request.url.path), exc_info=exc)
        return problem(500, "InternalError", "the service failed unexpectedly; it logged why", instance=request.url.path)

    app.add_exception_handler(errors.HitlError, hitl_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=``: these statuses, each answered as problem details."""
    return {code: {"model": Problem, "description": MEANINGS.get(code, TITLES.get(code, "Error"))} for code in codes}


AUTHENTICATED = problems(401, 403, 503)
"""What every route that takes a token may answer besides its own (503: the tokens' database unreachable)."""
# Any request may meet the edge (408, 413) and an unexpected failure (500).
_EVERYWHERE = (408, 413, 500)
_BODY = 400
"""A body that is not JSON, or not UTF-8 (FastAPI's parser refuses it before its schema is checked)."""


def install_openapi(app: FastAPI) -> None:
    """The OpenAPI document declares problem details for every error status of every route: those the
    route names, those any request can meet, and 422 wherever a parameter or a body is validated."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in components["Problem"].pop("$defs", {}).items():
            components.setdefault(name, definition)
        ref = {"$ref": "#/components/schemas/Problem"}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                codes = set(_EVERYWHERE)
                if operation.get("parameters") or operation.get("requestBody"):
                    codes.add(422)
                if operation.get("requestBody"):
                    codes.add(_BODY)
                for code in codes:
                    responses.setdefault(str(code), {"description": MEANINGS[code]})
                for code, response in responses.items():
                    shown = [c.get("schema", {}).get("$ref", "") for c in response.get("content", {}).values()]
                    # An error answer is a problem, unless the route documents a body of its own (/readyz's 503).
                    if code[0] in "45" and all(r.endswith(("/Problem", "/HTTPValidationError")) for r in shown):
                        response["content"] = {MEDIA_TYPE: {"schema": ref}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to change the schema
