"""What every request of the service shares: the database, the token store, the OIDC verifier, Temporal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from temporalio.client import Client

from hitl._core import client as _client
from hitl.db.postgres import PostgresDb
from hitl.security.oidc import OidcVerifier
from hitl.security.signing import Signer
from hitl.security.tokens import TokenStore
from hitl.service.config import ServiceConfig
from hitl.service.throttle import RefusalThrottle


@dataclass
class ServiceState:
    config: ServiceConfig
    db: PostgresDb
    tokens: TokenStore
    oidc: OidcVerifier | None
    signer: Signer | None = None
    throttle: RefusalThrottle = field(init=False)
    """Refused decisions per principal: past its limit, the routes that decide answer 429."""
    streams: dict[str, int] = field(default_factory=dict, init=False)
    """Open event streams per principal."""

    def __post_init__(self) -> None:
        self.throttle = RefusalThrottle(self.config.refusal_limit, self.config.refusal_window_seconds)

    async def temporal(self) -> Client:
        """The Temporal client (connected on first use, so the service starts while Temporal is down)."""
        return await _client.connect(self.config.temporal)


async def state(request: Request) -> ServiceState:
    # async: FastAPI runs a plain function dependency in its thread pool, a thread hop per request.
    return request.app.state.hitl


State = Annotated[ServiceState, Depends(state)]
"""A route's parameter: the service's shared state."""
