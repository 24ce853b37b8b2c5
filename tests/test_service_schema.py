"""Schemathesis against the service's own OpenAPI document: whatever it sends, no route answers 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


async def test_no_route_answers_5xx_to_anything_its_schema_allows_or_not(service):
    """Every route (but the endless event stream), positive and negative cases, as an admin: no 5xx."""
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is a dev dependency"
    token = service.token("fuzzer", "admin")
    # The service runs in a thread of this process: let it answer while schemathesis runs.
    import asyncio

    out = await asyncio.to_thread(subprocess.run, [
        st, "run", f"{service.url}/openapi.json", "--checks", "not_a_server_error",
        "-H", f"Authorization: Bearer {token}", "--exclude-path", "/approvals/events",
        "--max-examples", "15", "--seed", "1", "--workers", "1", "--phases", "examples,coverage,fuzzing",
        "--max-time", "75", "--wait-for-schema", "30"], capture_output=True, text=True, timeout=600)
    print(out.stdout[-3000:])
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
