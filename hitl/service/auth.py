"""Who is calling: the bearer credential becomes a Principal, and routes ask for scopes.

An API token (``hitl_...``) is looked up by its id and checked against the stored hash; a JWT
is checked against the configured OIDC key set. Nothing a caller types names the principal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hitl.errors import NotAuthenticatedError, PermissionDeniedError
from hitl.identity import Principal, Scope
from hitl.security.tokens import PREFIX
from hitl.service._state import ServiceState

_bearer = HTTPBearer(auto_error=False, description="An API token (`hitl tokens create`) or an OIDC access token.")


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The principal the request's bearer credential proves (401 otherwise)."""
    if credentials is None or not credentials.credentials:
        raise NotAuthenticatedError("no credentials: send Authorization: Bearer <API token or OIDC token>")
    principal = await authenticate(request.app.state.hitl, credentials.credentials)
    request.state.principal = principal
    return principal


async def authenticate(state: ServiceState, token: str) -> Principal:
    """The principal ``token`` proves now: a revoked or expired one raises (long streams ask again).

    Raises:
        NotAuthenticatedError: neither a valid API token nor an accepted OIDC token.
    """
    if token.startswith(PREFIX):
        return await state.tokens.authenticate(token)
    if state.oidc is not None and state.oidc.looks_like_jwt(token):
        return await state.oidc.verify(token)
    raise NotAuthenticatedError("the bearer token is neither a hitl API token nor an accepted OIDC token")


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, who must hold ``scope`` (or ``admin``), else 403."""

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.has(scope):
            raise PermissionDeniedError(f"{principal.name} lacks the scope {scope!r} this needs")
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


async def decider(request: Request, principal: Annotated[Principal, Depends(require("approvals:decide"))]) -> Principal:
    """A route that decides: the caller holds ``approvals:decide`` and has not been refused too often
    lately (429 otherwise, before anything is read or kept; ``hitl.service.throttle``)."""
    request.app.state.hitl.throttle.check(principal.name)
    return principal
