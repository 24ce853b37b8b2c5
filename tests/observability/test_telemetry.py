"""Traces: spans exported to the OpenTelemetry SDK's in-memory exporter, from the real service, worker and run."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
import temporalio.client
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.contrib.opentelemetry import TracingWorkflowInboundInterceptor

from hitl import tool
from hitl._core import client as _client
from hitl.approval import approval
from hitl.observability import telemetry
from hitl.observability import tracing as _tracing
from tests.service.test_service import paused

TRANSFERS: list[int] = []
RESOLVE = "HTTP POST /approvals/{run_id}/{requirement_id}/resolve"
CARD = "4111222233334444"


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


@tool
def charge(card: str) -> str:
    """Charge a card.

    Args:
        card: The card number.
    """
    raise ValueError(f"card {card} declined")


@tool(requires_confirmation=True)
def ship(parcel: str) -> str:
    """Ship a parcel.

    Args:
        parcel: Which.
    """
    return f"shipped {parcel}"


def exported(span: ReadableSpan) -> str:
    """Everything the exporter sends of a span: name, attributes, events, links, status."""
    return span.to_json()


async def test_a_failing_tool_exports_its_exception_type_never_its_message(spans, make_agent, script, running_worker, db,
                                                                           client):
    """A tool raising with a card number in its message: RunActivity spans fail naming ValueError, and no span holds the card."""
    model = script({"turns": [{"tool_calls": [{"name": "charge", "arguments": {"card": CARD}}]}, {"content": "{results}"}]})
    agent = make_agent(model, [charge], db=db)
    async with running_worker():
        try:
            run_id = (await agent.arun("charge it")).run_id
        except Exception:  # the run may fail with the tool's error: its spans are what is checked
            run_id = None
        for _ in range(100):  # the worker's spans end after the run's answer
            if any(s.name == "RunActivity:hitl.run_tool" and not s.status.is_ok for s in spans.get_finished_spans()):
                break
            await asyncio.sleep(0.05)
    finished = list(spans.get_finished_spans())
    failed = [s for s in named(finished, "RunActivity:hitl.run_tool") if s.status.status_code is StatusCode.ERROR]
    assert failed, [s.name for s in finished]
    for s in failed:
        assert s.status.description == "ValueError", s.status
        assert [dict(e.attributes) for e in s.events if e.name == "exception"] == [{"exception.type": "ValueError"}]
    assert [s.status.description for s in named(finished, "hitl.tool_call")][:1] == ["ValueError"]
    leaked = [s.name for s in finished if CARD in exported(s)]
    assert not leaked and run_id is not None, (leaked, run_id)


class _BadTracerHeader(temporalio.client.Interceptor):
    """A client whose signals carry ``header`` as their ``_tracer-data`` (after any tracing interceptor set one)."""

    def __init__(self, header: Payload) -> None:
        self.header = header

    def intercept_client(self, next: temporalio.client.OutboundInterceptor) -> temporalio.client.OutboundInterceptor:
        header = self.header

        class Outbound(temporalio.client.OutboundInterceptor):
            async def signal_workflow(self, input: temporalio.client.SignalWorkflowInput) -> None:
                input.headers = {**input.headers, "_tracer-data": header}
                await super().signal_workflow(input)

        return Outbound(next)


@pytest.mark.parametrize("header", [
    Payload(metadata={"encoding": b"json/plain"}, data=b"{not json"),
    Payload(metadata={"encoding": b"json/plain"}, data=b"[1, 2]"),
    Payload(metadata={"encoding": b"no/such-encoding"}, data=b"x"),
], ids=["bad-json", "not-a-carrier", "unknown-encoding"])
async def test_a_decision_signal_with_a_malformed_tracing_header_still_decides(header, spans, make_agent, script,
                                                                               running_worker, db, client):
    """A confirm signal whose _tracer-data is garbage reaches a traced worker: the tool runs, the run completes,
    and no workflow task failed."""
    model = script({"turns": [{"tool_calls": [{"name": "ship", "arguments": {"parcel": "p-1"}}]}, {"content": "{results}"}]})
    agent = make_agent(model, [ship], db=db)
    config = client.config()
    bad = temporalio.client.Client(**{**config, "interceptors": [*config["interceptors"], _BadTracerHeader(header)]})
    async with running_worker():
        run = await agent.arun("ship it")
        assert run.is_paused, run
        handle = bad.get_workflow_handle(run.run_id)
        await handle.signal("confirm", {"requirement_id": run.requirements[0].id})
        output = await asyncio.wait_for(handle.result(), 60)
    failed = [e async for e in handle.fetch_history_events() if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert failed == [] and "shipped p-1" in str(output), (failed, output)


def test_without_temporalio_internals_tracing_falls_back_to_the_safe_upstream_interceptor(monkeypatch, caplog):
    """A temporalio lacking a private method decision tracing uses: the safe upstream interceptor, one warning."""
    monkeypatch.delattr(TracingWorkflowInboundInterceptor, "_load_workflow_context_carrier")
    monkeypatch.setattr(_tracing, "_warned", set())
    assert _tracing.missing_internals() == ["_load_workflow_context_carrier"]
    provider = TracerProvider()
    telemetry.configure(tracer_provider=provider)
    try:
        with caplog.at_level(logging.WARNING, logger="hitl.observability.telemetry"):
            first, second = telemetry.client_interceptors(), telemetry.client_interceptors()
    finally:
        telemetry.reset()
    assert [type(i) for i in first + second] == [_tracing.SafeTracingInterceptor] * 2
    assert [r.getMessage() for r in caplog.records].count(
        "tracing: this temporalio lacks _load_workflow_context_carrier: decisions are linked to their sender's trace, "
        "not parented on it") == 1


def test_the_interceptors_tracer_records_exception_types_only():
    """Spans of the interceptor's tracer (workflow spans too: CompleteWorkflow records the failure) keep no message."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = _tracing.TypeOnlyTracer(provider.get_tracer("test"))
    span = tracer.start_span("CompleteWorkflow:x")
    span.record_exception(RuntimeError(f"card {CARD} declined"))
    span.end()
    with pytest.raises(KeyError), tracer.start_as_current_span("RunActivity:x"):
        raise KeyError(CARD)
    done = {s.name: s for s in exporter.get_finished_spans()}
    assert [dict(e.attributes) for e in done["CompleteWorkflow:x"].events] == [{"exception.type": "RuntimeError"}]
    assert done["RunActivity:x"].status.status_code is StatusCode.ERROR
    assert done["RunActivity:x"].status.description == "KeyError"
    assert not [name for name, s in done.items() if CARD in exported(s)]
