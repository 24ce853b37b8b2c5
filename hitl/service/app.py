"""The decision service's application: routers, error mapping, the body-size limit, start-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hitl import limits
from hitl._core import client as _client
from hitl._core import inline
from hitl.db.postgres import PostgresDb
from hitl.errors import PayloadTooLargeError
from hitl.security.oidc import OidcVerifier
from hitl.security.signing import Signer
from hitl.security.tokens import TokenStore
from hitl.service import approvals, codec, docs, errors, events, health, inbox, links, redaction, runs, slack
from hitl.service._state import ServiceState
from hitl.service.config import ServiceConfig

DESCRIPTION = """Decisions from other services, with verified identity.

Every request carries `Authorization: Bearer <token>`: an API token made with `hitl tokens create`,
or an OIDC access token when the service is configured for one. The token's principal is the
decider of every decision the request makes; who may decide a given approval is that approval's
own policy, checked by its run.
"""


class Edge:
    """What every request meets first, as plain ASGI (cheaper than a framework middleware): a body over
    ``max_bytes`` refused with 413 before it is read whole (chunked ones too); the time the service
    took, in a ``Server-Timing`` header; a restrictive Content-Security-Policy and ``nosniff`` on every
    answer that sets none of its own."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(send)
            return
        seen = 0
        started = refused = False

        async def counted() -> Message:
            # Over the limit, the 413 is sent here and the application is told the client has gone:
            # an exception raised here would be caught by whoever reads the body (FastAPI's parser
            # answers it with 400, the codec's with 422) and the 413 lost.
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    if not started:
                        await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        began = time.perf_counter()

        async def tracked(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out: whatever the application answers to the "disconnect" goes nowhere
            if message["type"] == "http.response.start":
                started = True
                took = f"app;dur={(time.perf_counter() - began) * 1000:.1f}".encode()
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in _SAFE_HEADERS if name not in present]
                message = {**message, "headers": [*headers, (b"server-timing", took)]}
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except Exception:
            if not refused:
                raise  # a disconnect the application raised over after the 413 is no error

    async def _refuse(self, send: Send) -> None:
        exc = PayloadTooLargeError(f"the request body is over the service's limit of {limits.size(self.max_bytes)}")
        response = errors.response_of(exc)
        response.raw_headers += _SAFE_HEADERS
        await response({"type": "http"}, _no_receive, send)


# Every answer that does not set its own (the inbox, /docs and link pages do): JSON is never a page to run
# scripts in or to frame, and is never sniffed as something else.
_SAFE_HEADERS = [(b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
                 (b"x-content-type-options", b"nosniff")]


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def create_app(config: ServiceConfig | None = None, **overrides: Any) -> FastAPI:
    """The service as an ASGI application (``uvicorn.run(create_app())``); settings from the environment
    unless ``config`` is given.

    Raises:
        ConfigurationError: no database, an unreadable OIDC key set, an agent module that fails to load.
    """
    config = config or ServiceConfig.from_env(**overrides)
    inline.disable()  # runs started here go to workers: the service never runs tools itself
    db = PostgresDb(config.database_url, approvals_table=config.approvals_table)
    hitl_state = ServiceState(config=config, db=db, tokens=TokenStore(db),
                              oidc=OidcVerifier(config.oidc) if config.oidc is not None else None,
                              signer=Signer.from_pem(config.signing_key, config.signing_key_id) if config.signing_key else None)
    if config.agent_modules:
        from hitl.worker import agents_in

        agents_in(config.agent_modules)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(db.migrate)
        yield
        # Clients are cached per event loop; this one is ending, and a later loop may get its id.
        _client.forget(asyncio.get_running_loop())
        await db.aclose()
        await asyncio.to_thread(db.close)

    redaction.install()  # before the first request: the access log prints paths and queries
    # /docs is this service's own page (hitl.service.docs): FastAPI's loads Swagger UI from a CDN.
    app = FastAPI(title="hitl decision service", version="1", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.hitl = hitl_state
    errors.install(app)
    errors.install_openapi(app)
    app.include_router(events.router)  # before approvals: /approvals/{id:path} would take /approvals/events
    app.include_router(approvals.router)
    app.include_router(runs.router)
    app.include_router(links.router)
    app.include_router(slack.router)
    app.include_router(inbox.router)
    app.include_router(docs.router)
    health.install(app)  # /healthz, /readyz, /metrics; request traces and metrics
    app.include_router(codec.router)
    if config.codec_cors_origin:
        app.add_middleware(codec.CodecCors, origin=config.codec_cors_origin)
    app.add_middleware(Edge, max_bytes=config.max_body_bytes)
    return app
