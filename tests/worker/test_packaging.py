"""The files people run by hand: docker-compose.yml, the demo, the Quick Start."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys

import yaml

from hitl.dev import stack
from tests.conftest import ROOT


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


_VAR = re.compile(r"(?<!\$)\$\{(\w+)(?::?[-?]([^}]*))?\}")  # $${X} is the container's own


def interpolate(text: str) -> str:
    """What compose makes of a value with an empty .env: ``${V:-default}`` the default, ``$$`` a ``$``."""
    return _VAR.sub(lambda m: m.group(2) or "", text).replace("$$", "$")


def shell_commands(script: str) -> list[list[str]]:
    """Each simple command of a job's ``sh -c`` script (split at ``||``, ``&&``, ``;``, loops' keywords)."""
    lexer = shlex.shlex(interpolate(script).replace("\n", " ; "), posix=True, punctuation_chars=";&|")
    commands, current = [], []
    for token in lexer:
        if token in (";", "&&", "||", "|", "do", "done", "then", "fi"):
            commands.append(current)
            current = []
        else:
            current.append(token)
    return [c for c in [*commands, current] if c and c[0] not in ("set", "for", "true")]


def strings(value: object) -> list[str]:
    """Every string in the parsed compose file (keys and values; comments are gone)."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (*strings(k), *strings(v))]
    if isinstance(value, list):
        return [t for v in value for t in strings(v)]
    return [value] if isinstance(value, str) else []


def help_of(*args: str) -> str:
    out = subprocess.run([stack.binary("temporal"), *args, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "Unknown command" not in out.stdout, (args, out.stdout + out.stderr)
    return out.stdout


def long_running(services: dict) -> dict:
    return {n: s for n, s in services.items() if not str(s.get("restart", "")).startswith("on-failure")}


def test_compose_has_a_cluster_its_setup_jobs_ui_postgres_workers_and_the_service():
    """docker-compose.yml: Temporal on PostgreSQL, schema and search-attribute jobs, the UI, workers, the service."""
    services = compose()["services"]
    assert set(services) == {"postgres", "temporal-schema", "temporal", "temporal-search-attributes", "temporal-ui",
                             "worker", "service"}
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert services["temporal"]["environment"]["POSTGRES_SEEDS"] == "postgres"
    for name in ("worker", "service"):
        env = services[name]["environment"]
        assert env["TEMPORAL_ADDRESS"] == "temporal:7233" and "@postgres:5432/" in env["DATABASE_URL"]
        assert services[name]["build"] == "." and (ROOT / "Dockerfile").exists()
    ui = services["temporal-ui"]["environment"]
    assert ui["TEMPORAL_ADDRESS"] == "temporal:7233" and interpolate(ui["TEMPORAL_CODEC_ENDPOINT"]).endswith(":8000/codec")


def test_compose_starts_each_service_after_what_it_needs():
    """Schema job done, then the server; server healthy, then the search attributes; workers and service last."""
    services = compose()["services"]
    assert services["temporal-schema"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["temporal"]["depends_on"] == {"temporal-schema": {"condition": "service_completed_successfully"}}
    assert services["temporal-search-attributes"]["depends_on"] == {"temporal": {"condition": "service_healthy"}}
    for name in ("worker", "service"):
        assert services[name]["depends_on"] == {
            "temporal": {"condition": "service_healthy"}, "postgres": {"condition": "service_healthy"},
            "temporal-search-attributes": {"condition": "service_completed_successfully"}}


def test_compose_schema_job_sets_up_both_temporal_databases_with_the_admin_tools():
    """temporal-sql-tool creates, sets up and updates temporal and temporal_visibility, on the server's plugin."""
    job = compose()["services"]["temporal-schema"]
    assert job["image"].startswith("temporalio/admin-tools:")
    script = job["command"][0]
    commands = shell_commands(script)
    assert all(c[0] == "temporal-sql-tool" and c[c.index("--plugin") + 1] == "postgres12" for c in commands)
    steps = [(c[c.index("--db") + 1], c[c.index("--db") + 2]) for c in commands]
    assert "for db in temporal temporal_visibility" in script and ("$db", "create") in steps
    for db in ("temporal", "temporal_visibility"):
        assert [s for d, s in steps if d == db] == ["setup-schema", "update-schema"], steps


def test_compose_temporal_cli_commands_are_ones_the_cli_accepts():
    """Every `temporal ...` the jobs run names a real subcommand, with flags it or the global options have."""
    services = compose()["services"]
    global_flags = subprocess.run([stack.binary("temporal"), "options"], capture_output=True, text=True).stdout
    commands = [c for s in services.values() if s.get("entrypoint") == ["/bin/sh", "-c"]
                for c in shell_commands(s["command"][0]) if c[0] == "temporal"]
    assert len(commands) >= 4
    for command in commands:
        words = [w for w in command[1:] if not w.startswith("-")][:3]
        path = words[:3] if words[:1] == ["operator"] else words[:2]
        text = help_of(*path) + global_flags
        for flag in (a for a in command if a.startswith("--")):
            assert flag in text, f"temporal {' '.join(path)} has no {flag}"


def test_compose_registers_exactly_hitls_search_attributes():
    """The search-attribute job creates the names and types hitl.observability.visibility defines, no more, no fewer."""
    from hitl.observability.visibility import _KEYS

    cli_type = {"KEYWORD": "Keyword", "KEYWORD_LIST": "KeywordList", "DATETIME": "Datetime"}
    wanted = {k.name: cli_type[k.indexed_value_type.name] for k in _KEYS}
    registered = {}
    for c in shell_commands(compose()["services"]["temporal-search-attributes"]["command"][0]):
        if c[:4] == ["temporal", "operator", "search-attribute", "create"]:
            kind = c[c.index("--type") + 1]
            registered.update({c[i + 1]: kind for i, a in enumerate(c) if a == "--name"})
    assert registered == wanted


def test_compose_service_command_is_one_hitl_serve_accepts():
    """The service runs `hitl serve` with options the command has, on modules that define Agents."""
    service = compose()["services"]["service"]
    command = service["command"]
    assert command[:2] == ["hitl", "serve"]
    help_text = subprocess.run([sys.executable, "-m", "hitl.cli", "serve", "--help"], capture_output=True, text=True,
                               env={**os.environ, "COLUMNS": "200"}).stdout
    for flag in (a for a in command if a.startswith("--")):
        assert flag in help_text, f"hitl serve has no {flag}"
    from hitl.worker import agents_in

    assert agents_in([command[i + 1] for i, a in enumerate(command) if a == "--agents"])


def test_compose_worker_command_runs_a_real_module():
    """The worker service runs worker.py on modules that exist and define Agents, the service's same modules."""
    services = compose()["services"]
    command = services["worker"]["command"]
    assert command[:2] == ["python", "worker.py"] and (ROOT / command[1]).exists()
    modules = [command[i + 1] for i, a in enumerate(command) if a == "--agents"]
    assert modules and all(importlib.util.find_spec(m) is not None for m in modules)
    from hitl.worker import agents_in

    assert all(agents_in([m]) for m in modules)
    serve = services["service"]["command"]
    assert modules == [serve[i + 1] for i, a in enumerate(serve) if a == "--agents"]


def test_compose_workers_scale():
    """`docker compose up --scale worker=3`: the worker has no container_name and publishes no port."""
    worker = compose()["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker


def test_compose_every_long_running_service_has_a_healthcheck_and_jobs_run_once():
    """Every service that stays up has a healthcheck; the two setup jobs retry on failure, then exit."""
    services = compose()["services"]
    assert set(services) - set(long_running(services)) == {"temporal-schema", "temporal-search-attributes"}
    for name, service in long_running(services).items():
        assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        assert service.get("restart") == "unless-stopped", name


def test_compose_service_healthcheck_asks_the_service_and_passes(service):
    """The service's healthcheck command, pointed at a running `hitl serve`, exits 0 (and 1 with nothing there)."""
    test = compose()["services"]["service"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"] and "/healthz" in test[-1]
    code = test[-1].replace("127.0.0.1:8000", f"127.0.0.1:{service.port}")
    assert subprocess.run([sys.executable, *test[2:-1], code], capture_output=True).returncode == 0
    dead = test[-1].replace("127.0.0.1:8000", f"127.0.0.1:{stack.free_port()}")
    assert subprocess.run([sys.executable, *test[2:-1], dead], capture_output=True).returncode != 0


def test_compose_worker_healthcheck_passes_once_the_worker_serves(temporal_server, tmp_path):
    """The worker's healthcheck reads the metrics of a worker started with the compose file's HITL_METRICS_ADDRESS."""
    worker = compose()["services"]["worker"]
    test = worker["healthcheck"]["test"]
    port = stack.free_port()
    address = worker["environment"]["HITL_METRICS_ADDRESS"].replace("0.0.0.0:9464", f"127.0.0.1:{port}")
    code = test[-1].replace("127.0.0.1:9464", f"127.0.0.1:{port}")
    assert subprocess.run([sys.executable, *test[2:-1], code], capture_output=True).returncode != 0
    from tests.core.test_durability import spawn_worker

    env = {**os.environ, "TEMPORAL_ADDRESS": temporal_server["address"], "HITL_METRICS_ADDRESS": address}
    proc = spawn_worker(env, tmp_path / "worker.log", "examples.quickstart")
    try:
        assert subprocess.run([sys.executable, *test[2:-1], code], capture_output=True).returncode == 0
    finally:
        proc.kill()
        proc.wait()


def test_env_example_documents_every_variable_compose_reads_and_holds_no_secret():
    """Each ${VAR} of docker-compose.yml is in .env.example, under a comment; passwords blank, key files paths."""
    used = {m.group(1) for text in strings(compose()) for m in _VAR.finditer(text)}
    lines = (ROOT / ".env.example").read_text().splitlines()
    documented = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in lines if re.match(r"^\w+=", line)}
    assert used == set(documented), (used ^ set(documented))
    for i, line in enumerate(lines):  # each variable, or group of variables, under a comment
        above = next(text for text in reversed(lines[:i]) if not re.match(r"^\w+=", text)) if i else ""
        assert not re.match(r"^\w+=", line) or above.startswith("#"), f"{line} has no comment above it"
    for name in ("POSTGRES_PASSWORD", "HITL_LINK_SECRET", "HITL_ENCRYPTION_KEYS", "OPENAI_API_KEY"):
        assert documented[name] == "", name
    for name in ("HITL_SIGNING_KEY_FILE", "HITL_DECISION_KEYS_FILE"):  # strict mode's keys: paths to files, never keys
        assert documented[name].startswith("./secrets/"), name
    assert {".env", "secrets"} <= set((ROOT / ".dockerignore").read_text().split())


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
    from tests.core.test_durability import spawn_worker

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
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{stack.free_port()}"}
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
    from tests.core.test_durability import spawn_worker

    worker = spawn_worker(env, tmp_path / "worker.log", "examples.quickstart")
    try:
        out = subprocess.run([sys.executable, "starter.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    finally:
        worker.kill()
        worker.wait()
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Status: completed" in out.stdout.split("--- Team approvals ---")[0]
    assert "error: run run-" in out.stderr and "no worker polls task queue" in out.stderr, out.stderr
