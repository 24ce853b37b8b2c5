"""Schemathesis against the service's own OpenAPI document, on a seeded stack with real runs and approvals:
no route answers 5xx, every answer fits the document, every schema-valid request is accepted or refused with a
status the document names."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest, RegisterNamespaceRequest
from temporalio.service import RPCError, RPCStatusCode

from hitl import tool
from hitl.approval import approval
from hitl.security import codec
from hitl.settings import Settings
from tests.conftest import RunningService
from tests.store.test_audit import settled, sql

CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
          "response_headers_conformance", "negative_data_rejection", "positive_data_acceptance"]


@approval(approvers=["fuzzer", "alice"], timeout=timedelta(hours=1))
@tool(requires_confirmation=True)
def pay(amount: int, to: str) -> str:
    """Pay someone."""
    return f"paid {amount} to {to}"


@tool(requires_user_input=True, user_input_fields=["time"])
def book(date: str, time: str) -> str:
    """Book a slot."""
    return f"booked {date} {time}"


@tool(external_execution=True)
def deploy(service: str) -> str:
    """Deploy elsewhere."""
    raise AssertionError("runs elsewhere")


def config(tmp: Path, approvals: list[str], runs: list[str]) -> Path:
    """schemathesis.toml: real ids drawn for path parameters half the time, generated ones otherwise. Every seeded run
    pauses on the same requirement ids (the script's calls), so any real run id with any real requirement id names
    a real approval."""
    path = tmp / "schemathesis.toml"
    requirements = sorted({a.split("/")[1] for a in approvals})
    path.write_text(
        f"[dictionaries.requirements]\nvalues = {json.dumps(requirements)}\n"
        f"[dictionaries.runs]\nvalues = {json.dumps(runs)}\n"
        "[parameters]\n"
        '"path.requirement_id" = { dictionary = "requirements", probability = 0.5 }\n'
        '"path.run_id" = { dictionary = "runs", probability = 0.5 }\n'
        # Schema-valid requests the service may still refuse, each a status the document declares: unknown or not
        # visible (404), decided already or ended (409), not fitting the approval or an opaque cursor (422), 429.
        "[checks.positive_data_acceptance]\n"
        'expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]\n')
    return path


@pytest.fixture
def encryption():
    """The codec routes answer (HITL_ENCRYPTION_KEYS): a 503 for a feature not set up is no finding."""
    codec.configure(f"k1:{base64.b64encode(os.urandom(32)).decode()}")
    yield
    codec.configure()


async def test_every_route_answers_as_its_document_says(db, client, make_agent, script, task_queue, tmp_path, encryption):
    """Every route (but the endless event stream), positive and negative cases, as an admin, against paused runs of
    each kind of approval: schemathesis's checks all hold."""
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is a dev dependency"
    # A namespace of its own: the runs of earlier tests (whose workers are gone) are none of its business.
    namespace = "hitl-fuzz"
    try:
        await client.workflow_service.register_namespace(RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)))
    except RPCError as exc:
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    settings = Settings.from_env(namespace=namespace)
    from hitl._core import client as _client

    fuzz_client = await _client.connect(settings)
    calls = [("pay", {"amount": 5, "to": "bob"}), ("book", {"date": "2026-12-24"}), ("deploy", {"service": "api"})]
    agent = make_agent(script({"turns": [{"tool_calls": [{"name": n, "arguments": a} for n, a in calls]},
                                         {"content": "done: {results}"}]}), [pay, book, deploy], db=db, client=fuzz_client)
    service = RunningService(db, temporal=settings, resolve_wait_seconds=2, refusal_limit=100_000)
    token = service.token("fuzzer", "admin")
    from hitl.worker import create_worker

    try:
        async with create_worker(fuzz_client, task_queue):
            runs = [await agent.arun("go") for _ in range(3)]
            approvals = [row[0] for run in runs for row in await settled(db, run.run_id, 3)]
            out = await asyncio.create_subprocess_exec(
                st, "--config-file", str(config(tmp_path, approvals, [r.run_id for r in runs])),
                "run", f"{service.url}/openapi.json", "--checks", ",".join(CHECKS), "-H", f"Authorization: Bearer {token}",
                "--exclude-path", "/approvals/events", "--max-examples", "12", "--seed", "1", "--workers", "1",
                "--phases", "examples,coverage,fuzzing", "--max-time", "120", "--wait-for-schema", "30",
                "--request-timeout", "60", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                # In the test's own folder: what an earlier run left in the checkout's .hypothesis/ and
                # .schemathesis/ (examples, crashes) was replayed first, and a rerun's fuzzer cancelled every seeded
                # run before deciding one (the test failed on every run after the first).
                cwd=tmp_path)
            output, _ = await asyncio.wait_for(out.communicate(), 600)
            # Real ids reached the routes that decide: some seeded approval was decided by the fuzzer.
            assert sql(db, "SELECT count(*) FROM {t} WHERE resolved_by = 'fuzzer'")[0][0] > 0
            # No input wedged a run: each still answers, and none has a workflow task failing over and over.
            for run in runs:
                assert (await agent.aget_run(run.run_id)).status is not None
                described = await fuzz_client.workflow_service.describe_workflow_execution(
                    DescribeWorkflowExecutionRequest(namespace=namespace, execution=WorkflowExecution(workflow_id=run.run_id)))
                assert described.pending_workflow_task.attempt <= 1, (run.run_id, described.pending_workflow_task)
            if os.environ.get("HITL_FUZZ_HOLD"):
                Path(os.environ["HITL_FUZZ_HOLD"] + ".stack").write_text(json.dumps({
                    "url": service.url, "token": token, "config": str(tmp_path / "schemathesis.toml")}))
                await asyncio.sleep(float(os.environ.get("HITL_FUZZ_HOLD_SECONDS", "0")))
    finally:
        service.stop()
    text = output.decode(errors="replace")
    if os.environ.get("HITL_FUZZ_HOLD"):  # a developer's loop: keep the stack up, say where it is
        Path(os.environ["HITL_FUZZ_HOLD"]).write_text(text)
    assert out.returncode == 0, text[-12000:]
