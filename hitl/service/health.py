"""Probes and metrics of the service: ``/healthz``, ``/readyz``, ``/metrics``, and every request traced and counted.

``/healthz`` and ``/readyz`` take no token (they say only up/ready and which dependency is down).
``/metrics`` needs a bearer credential with the ``metrics:read`` scope (or ``admin``): the port it
is on also serves the inbox and links. It shows counts by route template and tool, never ids, paths
or arguments (a link's path holds its token).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hitl._core import client as _client
from hitl.observability import telemetry
from hitl.service._state import ServiceState
from hitl.service.auth import require
from hitl.service.errors import AUTHENTICATED
from hitl.store import probes

__all__ = ["router", "install", "PROBE_TIMEOUT"]

PROBE_TIMEOUT = 2.0
"""Seconds each dependency of ``/readyz`` may take: a probe never hangs on a dead peer."""
DECISION_ROUTES = frozenset({
    ("POST", "/approvals/{run_id}/{requirement_id}/resolve"), ("POST", "/runs/{run_id}/continue"),
    ("POST", "/links/{token}"), ("POST", "/slack/interactions"),
})
"""Routes whose requests are decisions: timed in ``hitl_service_decision_seconds``."""
_UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})

router = APIRouter(tags=["operations"])


class ServiceMetrics:
    """The service's own metrics, in a registry of its own (several apps may share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("hitl_service_requests", "Requests answered, by route template and status",
                                ["method", "route", "status"], registry=self.registry)
        self.decisions = Histogram("hitl_service_decision_seconds", "Time to answer a decision request",
                                   ["route", "status"], registry=self.registry,
                                   buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        self.pending = Gauge("hitl_pending_approvals", "Approvals waiting for a decision (PostgreSQL), by tool",
                             ["tool"], registry=self.registry)


class Observed:
    """Plain ASGI around the app: a server span per request (in the caller's trace if it sent a
    ``traceparent``) and the request metrics, both named by route template, never by path."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNTRACED:
            await self.app(scope, receive, send)
            return
        status = 500
        began = time.perf_counter()

        async def noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if telemetry.enabled():
                await self._traced(scope, receive, noted, lambda: status)
            else:
                await self.app(scope, receive, noted)
        finally:
            route = getattr(scope.get("route"), "path", None) or "(unmatched)"
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            if (method, route) in DECISION_ROUTES:
                self.metrics.decisions.labels(route, str(status)).observe(time.perf_counter() - began)

    async def _traced(self, scope: Scope, receive: Receive, send: Send, status: Any) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace import SpanKind, Status, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or []}
        parent = TraceContextTextMapPropagator().extract(headers)
        tracer = telemetry._tracer_provider().get_tracer("hitl.service")
        method = scope["method"]
        with tracer.start_as_current_span(f"HTTP {method}", context=parent, kind=SpanKind.SERVER,
                                          attributes={"http.request.method": method}, record_exception=False,
                                          set_status_on_exception=False) as span:
            token = context.attach(trace.set_span_in_context(span, parent))
            try:
                await self.app(scope, receive, send)
            finally:
                context.detach(token)
                route = getattr(scope.get("route"), "path", None)
                if route:  # the template (/approvals/{run_id}/{requirement_id}/resolve), known once routed
                    span.update_name(f"HTTP {method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status())
                if status() >= 500:
                    span.set_status(Status(StatusCode.ERROR))


def install(app: FastAPI) -> None:
    """Add the probes, ``/metrics`` and the request tracing and metrics to the service."""
    metrics = ServiceMetrics()
    app.state.hitl_metrics = metrics
    app.include_router(router)
    app.add_middleware(Observed, metrics=metrics)


class Readiness(BaseModel):
    status: str = Field(description="ready, or why not: which of Temporal and PostgreSQL are unreachable.")
    checks: dict[str, str] = Field(description="Each dependency: ok, or what went wrong reaching it.")


@router.get("/healthz", summary="The process is up (no token)")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _temporal_reachable(s: ServiceState) -> None:
    client = await _client.connect(s.config.temporal)
    await client.service_client.check_health(timeout=timedelta(seconds=PROBE_TIMEOUT))


async def _postgres_reachable(s: ServiceState) -> None:
    await probes.ping(s.db)


async def _probe(check: Any) -> str | None:
    """None when reachable in time, else why not (the error's first line: no credentials, which DSNs may hold)."""
    try:
        await asyncio.wait_for(check, PROBE_TIMEOUT)
    except TimeoutError:
        return f"no answer within {PROBE_TIMEOUT:g}s"
    except Exception as exc:  # any failure means not ready; the reason is shown, not raised
        return type(exc).__name__
    return None


@router.get("/readyz", summary="Temporal and PostgreSQL reachable (no token)", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "Temporal or PostgreSQL unreachable (which, in checks)."}})
async def readyz(request: Request) -> JSONResponse:
    s: ServiceState = request.app.state.hitl
    temporal, postgres = await asyncio.gather(_probe(_temporal_reachable(s)), _probe(_postgres_reachable(s)))
    checks = {"temporal": temporal or "ok", "postgresql": postgres or "ok"}
    down = [name for name, why in (("temporal", temporal), ("postgresql", postgres)) if why]
    body = {"status": "ready" if not down else f"not ready: {', '.join(down)} unreachable", "checks": checks}
    return JSONResponse(body, status_code=503 if down else 200)


@router.get("/metrics", summary="Prometheus metrics of the service (scope metrics:read)", response_class=Response,
            dependencies=[Depends(require("metrics:read"))], responses={
                **AUTHENTICATED, 200: {"description": "The metrics, in Prometheus' text format.",
                                       "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}})
async def metrics(request: Request) -> Response:
    s: ServiceState = request.app.state.hitl
    m: ServiceMetrics = request.app.state.hitl_metrics
    try:
        pending = await asyncio.wait_for(probes.pending_by_tool(s.db), PROBE_TIMEOUT)
    except Exception:  # PostgreSQL down: the other metrics still answer; /readyz says why
        pending = None
    if pending is not None:
        m.pending.clear()
        for tool, n in pending.items():
            m.pending.labels(tool).set(n)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
