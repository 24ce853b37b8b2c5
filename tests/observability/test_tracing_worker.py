"""A traced worker makes hitl's pause and decision spans itself: runs started and decided by processes without
tracing still get them. The worker is a subprocess exporting over OTLP/HTTP to a real receiver in this test.

The receiver decodes ``ExportTraceServiceRequest`` protobufs (``opentelemetry-proto``); the worker exports
with ``opentelemetry-exporter-otlp-proto-http`` (``hitl[otel]``), configured by the standard ``OTEL_*``
variables only, as an operator would.

This module is also the worker's agent module (``--agents tests.observability.test_tracing_worker``).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from hitl import Agent, OpenAIChat, RunStatus, tool
from hitl._core import client as _client
from hitl.observability import telemetry

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "hitl-tracing-worker-tests"
MODEL = "trace-worker-pay"
SECRETS = ("731905", "Zed Quinn", "4111222233334444")
"""The tools' argument values: no span may carry them."""
SCRIPT = {"rules": [{"turns": [
    {"tool_calls": [{"name": "pay", "arguments": {"amount": 731905, "to": "Zed Quinn"}},
                    {"name": "wipe", "arguments": {"target": "vault-4111222233334444"}}]},
    {"content": "{results}"}]}]}


@tool(requires_confirmation=True)
def pay(amount: int, to: str) -> str:
    """Pay someone.

    Args:
        amount: How much.
        to: To whom.
    """
    return f"paid {amount} to {to}"


@tool(requires_confirmation=True)
def wipe(target: str) -> str:
    """Wipe a store.

    Args:
        target: Which.
    """
    return f"wiped {target}"


trace_agent = Agent(OpenAIChat(id=MODEL), name=MODEL, tools=[pay, wipe], task_queue=QUEUE)


# ------------------------------------------------------------------------------ OTLP trace messages

def _from_any(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_from_any(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _from_any(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def decode(body: bytes) -> list[dict[str, Any]]:
    """The spans of an ``ExportTraceServiceRequest``, each a dict (ids in hex, attributes as Python values)."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for rs in request.resource_spans:
        resource = {kv.key: _from_any(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append({
                    "name": s.name, "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(), "service": resource.get("service.name"),
                    "attributes": {kv.key: _from_any(kv.value) for kv in s.attributes},
                    "links": [(link.trace_id.hex(), link.span_id.hex()) for link in s.links],
                    "status": s.status.code,
                })
    return spans


# ------------------------------------------------------------------------------ receiver and worker
class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1: ``POST /v1/traces`` of protobuf ``ExportTraceServiceRequest``."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.spans: list[dict[str, Any]] = []
        self.paths: list[str] = []
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with lock:
                    receiver.paths.append(self.path)
                    if self.path == "/v1/traces" and "protobuf" in (self.headers.get("Content-Type") or ""):
                        receiver.bodies.append(body)
                        receiver.spans.extend(decode(body))
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")  # an empty ExportTraceServiceResponse
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def named(self, name: str, run_id: str) -> list[dict[str, Any]]:
        return [s for s in list(self.spans) if s["name"] == name and s["attributes"].get("hitl.run_id") == run_id]

    async def wait_for(self, run_id: str, wanted: dict[str, int]) -> None:
        """Until the spans of ``run_id`` include ``wanted`` of each name (``{"hitl.pause": 1}``)."""
        for _ in range(600):
            if all(len(self.named(name, run_id)) >= n for name, n in wanted.items()):
                return
            await asyncio.sleep(0.05)
        got = sorted({s["name"] for s in self.spans})
        raise AssertionError(f"spans of {run_id} never all arrived: wanted {wanted}, got names {got}, paths {self.paths}")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def traced_worker(receiver: Receiver, temporal_server: dict[str, Any], model_server: Any,
                  tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A ``hitl worker`` subprocess serving this module's agent, tracing on and exporting to ``receiver``."""
    model_server.add_script(MODEL, SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({
        "TEMPORAL_ADDRESS": temporal_server["address"], "OPENAI_BASE_URL": model_server.base_url,
        "PYTHONPATH": str(ROOT), "OTEL_SERVICE_NAME": "hitl-worker", "OTEL_BSP_SCHEDULE_DELAY": "100",
        # As an operator would: the standard variables only.
        "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
    })
    log = tmp_path / "traced-worker.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from hitl.cli import app; import sys; app(['worker', *sys.argv[1:]])", "--agents", "tests.observability.test_tracing_worker"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            if b"worker ready" in log.read_bytes():
                break
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        else:
            raise RuntimeError("worker did not start in 30 s")
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
async def untraced() -> AsyncIterator[None]:
    """This (the client) process without tracing: its clients carry no tracing interceptor."""
    telemetry.reset()
    _client.forget(asyncio.get_running_loop())
    client = await _client.connect(_settings())
    assert not telemetry.enabled() and client.config()["interceptors"] == []
    yield
    _client.forget(asyncio.get_running_loop())


def _settings() -> Any:
    from hitl.settings import Settings

    return Settings.from_env()


async def _pause() -> Any:
    run = await trace_agent.arun("pay Zed and wipe the vault")
    assert run.is_paused and sorted(r.tool_execution.tool_name for r in run.active_requirements) == ["pay", "wipe"], run
    return run


def _decide(run: Any) -> dict[str, str]:
    """Confirm pay as alice, reject wipe as bob; the requirement id of each tool."""
    ids = {}
    for r in run.active_requirements:
        ids[r.tool_execution.tool_name] = r.id
        if r.tool_execution.tool_name == "pay":
            r.confirm(resolved_by="alice")
        else:
            r.reject("not today", resolved_by="bob")
    return ids


# ------------------------------------------------------------------------------ tests
async def test_a_traced_worker_makes_pause_and_decision_spans_for_a_run_no_traced_process_touched(
        traced_worker, receiver, untraced):
    """Started and decided by this untraced process, served by a worker exporting over OTLP/HTTP: a hitl.pause
    span and a hitl.decision span per decision, with run, requirement, tool, outcome and decider; no arguments."""
    run = await _pause()
    ids = _decide(run)
    done = await asyncio.wait_for(trace_agent.acontinue_run(run.run_id, run.requirements), 60)
    assert done.status == RunStatus.completed and "paid 731905" in (done.content or ""), done
    await receiver.wait_for(run.run_id, {"hitl.pause": 1, "hitl.decision": 2, "hitl.tool_call": 1})

    [pause] = receiver.named("hitl.pause", run.run_id)
    assert pause["service"] == "hitl-worker"
    assert pause["attributes"]["hitl.agent"] == MODEL and pause["attributes"]["hitl.tools"] == "pay,wipe"
    assert pause["attributes"]["hitl.requirements"] == 2
    assert sorted(pause["attributes"]["hitl.requirement_ids"].split(",")) == sorted(ids.values())
    decisions = {s["attributes"]["hitl.tool"]: s["attributes"] for s in receiver.named("hitl.decision", run.run_id)}
    assert decisions == {
        "pay": {"hitl.agent": MODEL, "hitl.run_id": run.run_id, "hitl.tool": "pay", "hitl.requirement_id": ids["pay"],
                "hitl.outcome": "confirmed", "hitl.decider": "alice",
                "temporalWorkflowID": run.run_id, "temporalRunID": decisions["pay"]["temporalRunID"]},
        "wipe": {"hitl.agent": MODEL, "hitl.run_id": run.run_id, "hitl.tool": "wipe", "hitl.requirement_id": ids["wipe"],
                 "hitl.outcome": "rejected", "hitl.decider": "bob",
                 "temporalWorkflowID": run.run_id, "temporalRunID": decisions["wipe"]["temporalRunID"]},
    }
    # No caller's trace to join: each is a root span of its own trace.
    for s in [pause, *receiver.named("hitl.decision", run.run_id)]:
        assert s["parent_span_id"] == "" and len(s["trace_id"]) == 32 and set(s["trace_id"]) != {"0"}, s

    # Never the tools' arguments: not in any attribute, nor anywhere in what was sent.
    values = json.dumps([s["attributes"] for s in receiver.spans])
    sent = b"".join(receiver.bodies)
    assert [v for v in SECRETS if v in values or v.encode() in sent] == []


async def test_a_decision_from_a_traced_caller_is_parented_on_its_trace_though_the_run_started_untraced(
        traced_worker, receiver, untraced):
    """The same worker; the run started untraced, the decision sent from a traced span: hitl.decision is in the
    caller's trace, under the caller's update span, and the pause (no trace to join) is a root of its own."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    run = await _pause()
    ids = _decide(run)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.configure(tracer_provider=provider)
    _client.forget(asyncio.get_running_loop())
    try:
        with provider.get_tracer("caller").start_as_current_span("caller decides") as caller:
            done = await asyncio.wait_for(trace_agent.acontinue_run(run.run_id, run.requirements), 60)
    finally:
        telemetry.reset()
        _client.forget(asyncio.get_running_loop())
        provider.shutdown()
    assert done.status == RunStatus.completed, done
    await receiver.wait_for(run.run_id, {"hitl.pause": 1, "hitl.decision": 2, "hitl.tool_call": 1})
    trace_id = f"{caller.get_span_context().trace_id:032x}"
    ours = {f"{s.context.span_id:016x}" for s in exporter.get_finished_spans() if f"{s.context.trace_id:032x}" == trace_id}
    decisions = receiver.named("hitl.decision", run.run_id)
    assert {d["attributes"]["hitl.requirement_id"] for d in decisions} == set(ids.values())
    for d in decisions:
        assert d["trace_id"] == trace_id and d["parent_span_id"] in ours, (d, ours)
    [tool_span] = receiver.named("hitl.tool_call", run.run_id)
    assert tool_span["trace_id"] == trace_id  # the tool the decision let run: in the same trace
    [pause] = receiver.named("hitl.pause", run.run_id)
    assert pause["parent_span_id"] == "" and pause["trace_id"] != trace_id


async def test_recorded_histories_replay_under_the_tracing_interceptor_and_make_no_span():
    """Tracing on (pause and decision spans made without a caller's trace): every recorded history still
    replays, and replaying makes no span at all."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from temporalio.client import WorkflowHistory
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    from hitl.observability import tracing as _tracing
    from hitl.workflows import AgentRunWorkflow
    from tests import replay_agents  # noqa: F401 - registers the agents the histories ran
    from tests.workflows.test_replay import HISTORIES, IDS

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    interceptor = _tracing.interceptor(provider.get_tracer("temporalio"))
    assert isinstance(interceptor, _tracing.DecisionTracingInterceptor) and _tracing.parentless_spans_supported()
    replayer = Replayer(workflows=[AgentRunWorkflow], data_converter=pydantic_data_converter, interceptors=[interceptor])
    assert HISTORIES
    for path in HISTORIES:
        history = WorkflowHistory.from_json(IDS.get(path.name, "run-replay"), json.loads(path.read_text()))
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
    assert [s.name for s in exporter.get_finished_spans()] == []
