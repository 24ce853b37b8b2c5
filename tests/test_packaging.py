"""The files people run by hand: docker-compose.yml, the demo, the Quick Start."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import yaml

from hitl import devstack
from tests.conftest import ROOT


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_temporal_its_ui_postgres_and_the_worker():
    """docker-compose.yml defines the four services, wired to each other."""
    services = compose()["services"]
    assert {"temporal", "temporal-ui", "postgres", "worker"} <= set(services)
    worker_env = services["worker"]["environment"]
    assert worker_env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert worker_env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in worker_env["DATABASE_URL"]
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert (ROOT / "Dockerfile").exists() and services["worker"]["build"] == "."


def test_compose_temporal_command_is_one_the_cli_accepts():
    """Every flag the temporal service passes exists in `temporal server start-dev --help`."""
    command = compose()["services"]["temporal"]["command"]
    assert command[:2] == ["server", "start-dev"]
    help_text = subprocess.run([devstack.binary("temporal"), *command[:2], "--help"], capture_output=True, text=True).stdout
    for flag in (a for a in command if a.startswith("--")):
        assert flag in help_text, f"temporal server start-dev has no {flag}"


def test_compose_service_command_is_one_hitl_serve_accepts():
    """The service runs `hitl serve` with options the command has, on modules that define Agents."""
    service = compose()["services"]["service"]
    command = service["command"]
    assert command[:2] == ["hitl", "serve"] and service["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    help_text = subprocess.run([sys.executable, "-m", "hitl.cli", "serve", "--help"], capture_output=True, text=True,
                               env={**os.environ, "COLUMNS": "200"}).stdout
    for flag in (a for a in command if a.startswith("--")):
        assert flag in help_text, f"hitl serve has no {flag}"
    from hitl.worker import agents_in

    assert agents_in([command[i + 1] for i, a in enumerate(command) if a == "--agents"])


def test_compose_worker_command_runs_a_real_module():
    """The worker service runs worker.py on a module that exists and defines an Agent."""
    command = compose()["services"]["worker"]["command"]
    assert command[:2] == ["python", "worker.py"] and (ROOT / command[1]).exists()
    modules = [command[i + 1] for i, a in enumerate(command) if a == "--agents"]
    assert modules and all(importlib.util.find_spec(m) is not None for m in modules)
    from hitl.worker import agents_in

    assert all(agents_in([m]) for m in modules)


def test_quick_start_and_team_example_run_end_to_end(temporal_server, model_server, database_url, tmp_path):
    """The reference's Quick Start and team snippet, served by worker.py and driven by starter.py."""
    fixtures = json.loads((ROOT / "examples" / "demo_fixtures.json").read_text())
    for name, script in fixtures["scripts"].items():
        model_server.add_script(name, script)
    model_server.static.update(fixtures["static"])
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_server["address"],
        "DATABASE_URL": database_url,
        "OPENAI_BASE_URL": model_server.base_url,
        "HN_API_URL": model_server.base_url.removesuffix("/v1") + "/hn/v0",
        "TEMPORAL_TASK_QUEUE": "quickstart-test",
    }
    log = tmp_path / "worker.log"
    from tests.test_durability import spawn_worker

    worker = spawn_worker(env, log, "examples.quickstart", "examples.team_trading")
    try:
        out = subprocess.run([sys.executable, "starter.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    finally:
        worker.kill()
        worker.wait()
    assert out.returncode == 0, out.stderr + log.read_text()[-3000:]
    quick, team = out.stdout.split("--- Team approvals ---")
    lines = quick.strip().splitlines()
    assert "Status: paused" in lines and "Tool: get_top_hackernews_stories" in lines
    assert "Args: {'num_stories': 2}" in lines and "Status: completed" in lines
    assert "Durable execution for AI agents" in lines[-2] and "Human approvals that survive deploys" in lines[-2]
    assert lines[-1].startswith("Audit: approval run-") and " approved " in lines[-1]
    assert "events ['requested', 'confirmed']" in lines[-1]
    lines = team.strip().splitlines()
    assert "Status: paused" in lines and "Approve trade: {'symbol': 'AAPL', 'quantity': 100}" in lines
    assert any(line.startswith("Member: Trader (run run-") for line in lines) and "Status: completed" in lines
    assert "Researcher: AAPL: last 189.90" in lines[-2] and "Trader: Bought 100 AAPL at market" in lines[-2]
    assert lines[-1].startswith("Audit: approval run-") and ".Trader." in lines[-1] and " approved " in lines[-1]


def test_worker_without_temporal_says_what_to_start_in_one_line():
    """`python worker.py` with nothing listening: one line naming the address and `hitl dev`, exit code 1."""
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{devstack.free_port()}"}
    out = subprocess.run([sys.executable, "worker.py", "--agents", "examples.quickstart"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and env["TEMPORAL_ADDRESS"] in errors[0] and "hitl dev" in errors[0], out.stderr
    assert "Traceback" not in out.stderr


def test_starter_beside_a_worker_that_lacks_the_team_fails_and_says_why(temporal_server, model_server, database_url, tmp_path):
    """The Quick Start completes; the team's run has no worker: the starter says so and exits non-zero."""
    fixtures = json.loads((ROOT / "examples" / "demo_fixtures.json").read_text())
    for name, script in fixtures["scripts"].items():
        model_server.add_script(name, script)
    model_server.static.update(fixtures["static"])
    env = {**os.environ, "TEMPORAL_ADDRESS": temporal_server["address"], "DATABASE_URL": database_url,
           "OPENAI_BASE_URL": model_server.base_url, "HN_API_URL": model_server.base_url.removesuffix("/v1") + "/hn/v0",
           "TEMPORAL_TASK_QUEUE": "starter-lacks-team"}
    from tests.test_durability import spawn_worker

    worker = spawn_worker(env, tmp_path / "worker.log", "examples.quickstart")
    try:
        out = subprocess.run([sys.executable, "starter.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    finally:
        worker.kill()
        worker.wait()
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Status: completed" in out.stdout.split("--- Team approvals ---")[0]
    assert "error: run run-" in out.stderr and "no worker polls task queue" in out.stderr, out.stderr
