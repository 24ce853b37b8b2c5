"""Metrics: the SDK's Prometheus port and the service's /metrics scraped over HTTP, and its probes."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import httpx
import pytest

from hitl import tool
from hitl._core import client as _client
from hitl.approval import approval
from hitl.dev import stack
from hitl.observability import telemetry
from hitl.settings import Settings
from tests.conftest import RunningService
from tests.service.test_service import paused

RESOLVE = "/approvals/{run_id}/{requirement_id}/resolve"


@approval(approvers=["alice"], timeout=timedelta(hours=1))
@tool(requires_confirmation=True)
def refund(amount: int) -> str:
    """Refund a customer."""
    return f"refunded {amount}"


def value(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels`` (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            total += float(m.group(2))
    return total


@pytest.fixture(scope="module")
def sdk_port():
    """The SDK runtime with its Prometheus endpoint on a free port, for the clients made meanwhile."""
    port = stack.free_port()
    mp = pytest.MonkeyPatch()
    mp.setenv("HITL_METRICS_ADDRESS", f"127.0.0.1:{port}")
    telemetry._runtime = None  # one runtime per process: this module's
    telemetry.runtime()
    yield port
    mp.undo()


@pytest.fixture
async def metered(sdk_port):
    _client.forget(asyncio.get_running_loop())  # the next client is made with the metrics runtime
    yield sdk_port
    _client.forget(asyncio.get_running_loop())


async def scrape(url: str, token: str | None = None) -> str:
    async with httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {token}"} if token else {}) as http:
        r = await http.get(url)
        assert r.status_code == 200, r.text
        return r.text


async def until(url: str, name: str, at_least: float, **labels: str) -> str:
    """Scrape until the metric reaches ``at_least`` (exporters update in the background)."""
    for _ in range(100):
        text = await scrape(url)
        if value(text, name, **labels) >= at_least:
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name}{labels} stayed below {at_least}:\n" + "\n".join(
        line for line in text.splitlines() if line.startswith("hitl_")))


@pytest.fixture
async def paused_refund(metered, make_agent, script, running_worker, db, service):
    """A run paused for ``refund``, with its worker running: (agent name, approval id, SDK metrics URL)."""
    model = script({"turns": [{"tool_calls": [{"name": "refund", "arguments": {"amount": 40}}]}, {"content": "{results}"}]})
    agent = make_agent(model, [refund], db=db)
    async with running_worker():
        _, approval_id = await paused(agent, db)
        yield agent.name, approval_id, f"http://127.0.0.1:{metered}/metrics"


async def test_the_sdk_port_counts_a_pause_a_refused_attempt_and_a_decision(paused_refund, service):
    """hitl_approvals_requested, hitl_refused_decisions and hitl_decision_seconds move by one each."""
    agent, approval_id, url = paused_refund
    await until(url, "hitl_approvals_requested", 1, agent=agent, tool="refund")
    async with service.client(service.token("mallory")) as mallory, service.client(service.token("alice")) as alice:
        assert (await mallory.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})).status_code == 403
        await until(url, "hitl_refused_decisions", 1, agent=agent, tool="refund")
        assert value(await scrape(url), "hitl_decision_seconds_count", agent=agent) == 0
        assert (await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})).status_code == 200
    text = await until(url, "hitl_decision_seconds_count", 1, agent=agent, tool="refund", resolution="confirmed")
    assert value(text, "hitl_decision_seconds_count", agent=agent) == 1
    assert "temporal_" in text  # the SDK's own metrics on the same port


async def test_the_mirror_lag_is_measured_for_every_event(paused_refund):
    """hitl_mirror_lag_seconds has a sample for the pause's requested event."""
    agent, _, url = paused_refund
    await until(url, "hitl_mirror_lag_seconds_count", 1, agent=agent)


async def test_service_metrics_show_pending_by_tool_and_time_decisions(paused_refund, service):
    """/metrics: hitl_pending_approvals{tool} goes 1 then 0; the decision histogram counts the resolve."""
    _, approval_id, _ = paused_refund
    prometheus = service.token("prometheus", "metrics:read")
    text = await scrape(f"{service.url}/metrics", prometheus)
    assert value(text, "hitl_pending_approvals", tool="refund") == 1
    before = value(text, "hitl_service_decision_seconds_count", route=RESOLVE)
    async with service.client(service.token("alice")) as alice:
        assert (await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})).status_code == 200
    for _ in range(100):  # the mirror writes the decision beside the run
        text = await scrape(f"{service.url}/metrics", prometheus)
        if value(text, "hitl_pending_approvals", tool="refund") == 0:
            break
        await asyncio.sleep(0.05)
    assert value(text, "hitl_pending_approvals", tool="refund") == 0
    assert value(text, "hitl_service_decision_seconds_count", route=RESOLVE) == before + 1
    assert value(text, "hitl_service_requests_total", route=RESOLVE, status="200") >= 1
    assert approval_id not in text  # counts only, never ids


async def test_service_metrics_need_a_token_with_metrics_read(service):
    """/metrics: 401 with no credential, 403 for a token without metrics:read, 200 with it (or admin)."""
    async with service.client() as anonymous:
        r = await anonymous.get("/metrics")
        assert r.status_code == 401 and "hitl_" not in r.text, r.text
    async with service.client(service.token("alice", "approvals:read", "approvals:decide", "runs:read")) as alice:
        r = await alice.get("/metrics")
        assert r.status_code == 403 and "hitl_" not in r.text, r.text
    for scopes in (("metrics:read",), ("admin",)):
        async with service.client(service.token("prometheus", *scopes)) as prometheus:
            r = await prometheus.get("/metrics")
            assert r.status_code == 200 and "# TYPE hitl_pending_approvals gauge" in r.text, (scopes, r.text)


async def test_healthz_and_readyz_answer_200_with_everything_up(service):
    """/healthz and /readyz need no token and answer 200 when Temporal and PostgreSQL are reachable."""
    async with service.client() as anonymous:
        assert (await anonymous.get("/healthz")).status_code == 200
        r = await anonymous.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"] == {"temporal": "ok", "postgresql": "ok"}, r.text


async def test_readyz_answers_503_naming_temporal_when_it_is_unreachable(db, temporal_server):
    """A service whose Temporal address is a closed port: /readyz 503 naming temporal, PostgreSQL ok."""
    closed = stack.free_port()
    running = RunningService(db, temporal=Settings.from_env(temporal_address=f"127.0.0.1:{closed}"))
    try:
        async with running.client() as anonymous:
            r = await anonymous.get("/readyz")
    finally:
        running.stop()
    assert r.status_code == 503 and "temporal" in r.json()["status"], r.text
    assert r.json()["checks"]["postgresql"] == "ok"


async def test_readyz_answers_503_naming_postgresql_when_it_is_unreachable(db, temporal_server):
    """The service's app with its database URL on a closed port (no lifespan, so no migration): 503 naming postgresql."""
    from hitl.service import ServiceConfig, create_app

    url = f"postgresql://hitl@127.0.0.1:{stack.free_port()}/hitl?connect_timeout=1"
    app = create_app(ServiceConfig(database_url=url, approvals_table=db.approvals_table, temporal=Settings.from_env()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hitl") as http:
        r = await http.get("/readyz")
    await app.state.hitl.db.aclose()
    assert r.status_code == 503 and "postgresql" in r.json()["status"], r.text
    assert r.json()["checks"]["temporal"] == "ok"
