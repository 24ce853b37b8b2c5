"""Traces: spans exported to the OpenTelemetry SDK's in-memory exporter, from the real service, worker and run."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hitl import _client, telemetry, tool
from hitl.approval import approval

from .test_service import paused

TRANSFERS: list[int] = []
RESOLVE = "HTTP POST /approvals/{approval_id:path}/resolve"


@approval(approvers=["alice"], timeout=timedelta(hours=1))
@tool(requires_confirmation=True)
def transfer(amount: int, to: str) -> str:
    """Move money.

    Args:
        amount: How much.
        to: To whom.
    """
    TRANSFERS.append(amount)
    return f"moved {amount}"


@pytest.fixture
async def spans():
    """Tracing on, into an in-memory exporter, for the clients this test makes; off again after."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.configure(tracer_provider=provider)
    _client.forget(asyncio.get_running_loop())  # clients are cached per loop: the next one is traced
    yield exporter
    telemetry.reset()
    _client.forget(asyncio.get_running_loop())
    provider.shutdown()


@pytest.fixture
async def decided_run(spans, make_agent, script, running_worker, db, service):
    """A run that paused for ``transfer`` and was approved by alice over HTTP: its spans."""
    model = script({"turns": [{"tool_calls": [{"name": "transfer", "arguments": {"amount": 731905, "to": "Zed Quinn"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [transfer], db=db)
    async with running_worker(), service.client(service.token("alice")) as alice:
        run, approval_id = await paused(agent, db)
        r = await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"}, params={"wait": 30})
        assert r.status_code == 200, r.text
        for _ in range(200):  # the run's last model call and the tool's span end after the answer
            if sum(s.name == "hitl.model_call" for s in spans.get_finished_spans()) >= 2:
                break
            await asyncio.sleep(0.05)
    return run.run_id, list(spans.get_finished_spans())


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def test_the_tool_call_is_in_the_trace_of_the_http_decision(decided_run):
    """The tool's span has the resolve request's trace id, and descends from its span."""
    _, spans = decided_run
    [http] = named(spans, RESOLVE)
    [tool_span] = named(spans, "hitl.tool_call")
    assert tool_span.context.trace_id == http.context.trace_id
    by_id = {s.context.span_id: s for s in spans}
    chain, cur = [], tool_span
    while cur.parent is not None and cur.parent.span_id in by_id:
        cur = by_id[cur.parent.span_id]
        chain.append(cur.name)
    assert chain[-1] == RESOLVE and "hitl.decision" in chain, chain


async def test_model_calls_a_pause_and_a_decision_have_spans_naming_agent_tool_and_run(decided_run):
    """Two model calls, one pause and one decision span, each carrying the agent and the run id."""
    run_id, spans = decided_run
    models, [pause], [decision] = named(spans, "hitl.model_call"), named(spans, "hitl.pause"), named(spans, "hitl.decision")
    assert len(models) == 2 and all(s.attributes["hitl.run_id"] == run_id for s in models)
    assert pause.attributes["hitl.tools"] == "transfer" and pause.attributes["hitl.run_id"] == run_id
    assert decision.attributes["hitl.outcome"] == "confirmed" and decision.attributes["hitl.tool"] == "transfer"


async def test_spans_never_carry_the_tool_arguments(decided_run):
    """No attribute of any span holds an argument's value."""
    _, spans = decided_run
    values = " ".join(str(v) for s in spans for v in (s.attributes or {}).values())
    assert "hitl.tool_call" in {s.name for s in spans}
    assert "731905" not in values and "Zed Quinn" not in values


def test_telemetry_off_adds_no_interceptor_and_keeps_the_default_runtime(monkeypatch):
    """With no OTEL_* exporter and no HITL_METRICS_ADDRESS: no interceptor, the SDK's default runtime."""
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                 "HITL_METRICS_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    telemetry.reset()
    assert telemetry.client_interceptors() == [] and telemetry.runtime() is None and not telemetry.enabled()
