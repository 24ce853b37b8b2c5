"""Schemathesis against the service's own OpenAPI document: whatever it sends, no route answers 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.service import RPCError, RPCStatusCode

from hitl.config import Settings


async def test_no_route_answers_5xx_to_anything_its_schema_allows_or_not(db, client):
    """Every route (but the endless event stream), positive and negative cases, as an admin: no 5xx."""
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is a dev dependency"
    from .conftest import RunningService

    # A namespace of its own: the runs of earlier tests (whose workers are gone) are none of its business.
    namespace = "hitl-fuzz"
    try:
        await client.workflow_service.register_namespace(RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)))
    except RPCError as exc:
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    service = RunningService(db, temporal=Settings.from_env(namespace=namespace))
    token = service.token("fuzzer", "admin")
    # The service runs in a thread of this process: let it answer while schemathesis runs.
    import asyncio

    out = await asyncio.to_thread(subprocess.run, [
        st, "run", f"{service.url}/openapi.json", "--checks", "not_a_server_error",
        "-H", f"Authorization: Bearer {token}", "--exclude-path", "/approvals/events",
        "--max-examples", "15", "--seed", "1", "--workers", "1", "--phases", "examples,coverage,fuzzing",
        "--max-time", "75", "--wait-for-schema", "30"], capture_output=True, text=True, timeout=600)
    service.stop()
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
