"""The commands around the service: `hitl serve` as a real process, `hitl tokens`, `hitl keys`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx

from hitl.dev import stack
from tests.conftest import ROOT


def hitl(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "hitl.cli", *args], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **(env or {})}, cwd=ROOT)
    assert not check or out.returncode == 0, out.stdout + out.stderr
    return out


async def test_the_curl_walkthrough_against_hitl_serve(temporal_server, model_server, database_url, client, monkeypatch):
    """The README's walk-through: tokens from the CLI, `hitl serve --agents`, a run started, listed, decided over HTTP."""
    from hitl.worker import create_worker
    from tests import service_agents

    model_server.add_script("walkthrough", service_agents.SCRIPT)
    monkeypatch.setenv("OPENAI_BASE_URL", model_server.base_url)
    table = ["--approvals-table", service_agents.TABLE]
    alice = json.loads(hitl("tokens", "create", "alice", "-s", "approvals:read", "-s", "approvals:decide",
                            "-s", "runs:start", "-s", "runs:read", "--json", *table).stdout)
    mallory = json.loads(hitl("tokens", "create", "mallory", "-s", "approvals:decide", "--expires-in", "1h", "--json",
                              *table).stdout)
    listed = json.loads(hitl("tokens", "list", "--json", *table).stdout)
    assert {alice["id"], mallory["id"]} <= {t["id"] for t in listed}
    assert all("token" not in t and "secret_hash" not in t for t in listed)
    assert hitl("tokens", "revoke", mallory["id"], *table).stdout.strip() == f"{mallory['id']} revoked"
    assert mallory["id"] not in {t["id"] for t in json.loads(hitl("tokens", "list", "--json", *table).stdout)}
    assert mallory["id"] in {t["id"] for t in json.loads(hitl("tokens", "list", "--all", "--json", *table).stdout)}
    bad = hitl("tokens", "create", "eve", "-s", "approvals:everything", *table, check=False)
    assert bad.returncode == 1 and "scopes" in bad.stderr

    port = stack.free_port()
    server = subprocess.Popen([sys.executable, "-m", "hitl.cli", "serve", "--port", str(port), "--agents",
                               "tests.service_agents", *table], cwd=ROOT, env=os.environ.copy(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/openapi.json").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        async with create_worker(client, service_agents.QUEUE), \
                httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {alice['token']}"}, timeout=60) as http:
            r = await http.post("/runs", json={"agent": "walkthrough-agent", "message": "Fetch the top 2 hackernews stories"})
            assert r.status_code == 201 and r.json()["status"] == "paused", r.text
            run_id = r.json()["run_id"]
            for _ in range(100):
                waiting = (await http.get("/approvals", params={"approver": "me", "status": "pending", "run_id": run_id})).json()
                if waiting["data"]:
                    break
                time.sleep(0.05)
            [approval] = waiting["data"]
            assert approval["context"]["tool_name"] == "get_top_hackernews_stories"
            r = await http.post(f"/approvals/{approval['id']}/resolve", json={"status": "approved"},
                                headers={"Idempotency-Key": "hn-1"})
            assert r.status_code == 200 and r.json()["run"]["status"] == "completed", r.text
            assert r.json()["run"]["content"] == "Here are the top stories: 2 stories"
            revoked = await http.get("/approvals", headers={"Authorization": f"Bearer {mallory['token']}"})
            assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0]
    # uvicorn shuts down cleanly, then re-raises SIGTERM so the parent sees why it stopped
    assert server.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in output, output
    assert alice["token"] not in output and mallory["token"] not in output  # secrets never reach the log


def test_hitl_keys_generate_and_public(tmp_path):
    """`hitl keys generate` writes a private key only its owner reads and prints the JWKS; `public` prints the same."""
    key = tmp_path / "service.pem"
    jwks = json.loads(hitl("keys", "generate", "--out", str(key)).stdout)
    assert oct(key.stat().st_mode & 0o777) == "0o600" and b"PRIVATE KEY" in key.read_bytes()
    [public] = jwks["keys"]
    assert public["kty"] == "OKP" and public["crv"] == "Ed25519" and "d" not in public
    assert json.loads(hitl("keys", "public", str(key)).stdout) == jwks
    again = hitl("keys", "generate", "--out", str(key), check=False)
    assert again.returncode == 1 and "exists" in again.stderr
