"""Every example of the manual runs (tests/docs/examples.py says how): a page whose example drifts fails CI."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import typer.main

from hitl.cli import app as hitl_app
from hitl.dev import stack
from hitl.testing import ScriptedModelServer
from tests.docs.examples import PROGRAMS_CHECKED_ELSEWHERE, ROOT, Example, all_examples

EXAMPLES = all_examples()
BIN = str(Path(sys.executable).parent)
TIMEOUT = 180


def _by_page(language: str, mode: str = "run") -> dict[str, list[Example]]:
    pages: dict[str, list[Example]] = {}
    for example in EXAMPLES:
        if example.language == language and example.mode == mode:
            pages.setdefault(example.page, []).append(example)
    return pages


class DocsStack:
    """What the examples run against: a database of their own, the scripted model with the demo's scripts,
    a worker and `hitl serve` for the example agents (examples/), a token with every scope, a paused run."""

    def __init__(self, temporal_address: str, database_url: str, tmp: Path) -> None:
        self.tmp = tmp
        self.database_url = _fresh_database(database_url)
        fixtures = json.loads((ROOT / "examples" / "demo_fixtures.json").read_text())
        self.model = ScriptedModelServer(scripts=fixtures["scripts"], static=fixtures["static"]).start()
        self.env = {
            **os.environ,
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "TEMPORAL_ADDRESS": temporal_address,
            "TEMPORAL_TASK_QUEUE": f"docs-{uuid.uuid4().hex[:8]}",  # no other test's worker polls it
            "DATABASE_URL": self.database_url,
            "OPENAI_BASE_URL": self.model.base_url,
            "OPENAI_API_KEY": "sk-docs",
            "HN_API_URL": self.model.base_url.removesuffix("/v1") + "/hn/v0",
            "HITL_INLINE_WORKER": "auto",
            "PYTHONPATH": str(ROOT),
            "COLUMNS": "200",
            "NO_COLOR": "1",
            # Secrets the examples read from the environment, as a deployment would give them.
            "SMTP_PASSWORD": "docs-smtp-password",
            "WEBHOOK_SECRET": "docs-webhook-secret",
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        modules = ["--agents", "examples.quickstart", "--agents", "examples.team_trading"]
        self._start("worker", [sys.executable, "-m", "hitl.cli", "worker", *modules], "worker ready")
        token = json.loads(self.hitl("tokens", "create", "docs-reader", "--json", *[
            a for s in ("approvals:read", "approvals:decide", "runs:start", "runs:read", "runs:cancel")
            for a in ("-s", s)]))
        port = stack.free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._start("service", [sys.executable, "-m", "hitl.cli", "serve", "--port", str(port), *modules],
                    "Application startup complete")
        self.env.update({"HITL_URL": self.url, "HITL_TOKEN": token["token"], "TOKEN": token["token"]})
        self.paused()  # a pending approval for the pages that read the trail

    def hitl(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "hitl.cli", *args], capture_output=True, text=True,
                              env=self.env, cwd=self.tmp, timeout=TIMEOUT)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def _start(self, name: str, command: list[str], ready: str) -> None:
        log = self.tmp / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while ready not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, f"{name} did not start:\n{log.read_text()}"
            time.sleep(0.1)

    def paused(self) -> dict[str, str]:
        """A fresh run of the Quick Start's agent, paused on its approval: the ids the bash examples use."""
        answer = httpx.post(f"{self.url}/runs", json={"agent": "examples.quickstart.agent",
                                                      "message": "Fetch the top 2 hackernews stories"},
                            headers={"Authorization": f"Bearer {self.env['TOKEN']}"}, timeout=60)
        assert answer.status_code == 201 and answer.json()["status"] == "paused", answer.text
        run = answer.json()
        requirement = run["requirements"][0]["id"]
        return {"RUN_ID": run["run_id"], "REQUIREMENT_ID": requirement, "APPROVAL_ID": f"{run['run_id']}/{requirement}"}

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.model.stop()


def _fresh_database(url: str) -> str:
    name = f"docs_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    if "://" not in url:
        return psycopg.conninfo.make_conninfo(url, dbname=name)
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest.fixture(scope="module")
def docs_stack(temporal_server: dict[str, Any], database_url: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[DocsStack]:
    running = DocsStack(temporal_server["address"], database_url, tmp_path_factory.mktemp("docs"))
    try:
        yield running
    finally:
        running.stop()


# --------------------------------------------------------------------------- python
PYTHON = _by_page("python")


@pytest.mark.parametrize("page", sorted(PYTHON))
def test_the_python_examples_of_a_page_run(page: str, docs_stack: DocsStack, tmp_path: Path) -> None:
    script = "\n\n".join(f"# {e.id}\n{e.code}" for e in PYTHON[page])
    (tmp_path / "example.py").write_text(script)
    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=docs_stack.env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 0, f"{page}:\n{done.stdout}\n{done.stderr}"
    printed = done.stdout.splitlines()
    for output in _by_page("output", "output").get(page, []):
        for line in filter(None, output.code.splitlines()):
            pattern = re.compile(".*".join(re.escape(piece) for piece in line.split("…")))
            assert any(pattern.fullmatch(p) for p in printed), f"{output.id}: no line like {line!r} in\n{done.stdout}"
    for example in _by_page("sql").get(page, []):
        with psycopg.connect(docs_stack.database_url) as conn:
            for statement in (s for s in example.code.split(";") if s.strip()):
                conn.execute(statement)


# --------------------------------------------------------------------------- pytest (the Testing guide)
USERS_PYTEST_SETTINGS = """[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "session"
asyncio_default_test_loop_scope = "session"
"""


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.mode == "pytest"], ids=lambda e: e.id)
def test_a_pytest_example_passes_in_a_project_of_its_own(example: Example, database_url: str, tmp_path: Path) -> None:
    """As a user runs it: a folder with the test module and the page's pytest settings, hitl's plugin loaded
    by its entry point, no conftest; TEMPORAL_ADDRESS and the rest come from the plugin's fixtures."""
    name = re.match(r"# (test_\w+\.py)", example.code)
    assert name, f"{example.id}: a pytest example starts with its file name, '# test_....py'"
    assert USERS_PYTEST_SETTINGS in (ROOT / example.page).read_text(), f"{example.page} shows other pytest settings"
    (tmp_path / name.group(1)).write_text(example.code)
    (tmp_path / "pyproject.toml").write_text(USERS_PYTEST_SETTINGS)
    env = {k: v for k, v in os.environ.items()
           if k not in ("TEMPORAL_ADDRESS", "HITL_INLINE_WORKER", "OPENAI_BASE_URL", "PYTHONPATH", "PYTEST_ADDOPTS")}
    env["DATABASE_URL"] = database_url  # the plugin makes a database of its own on this server
    # A basetemp of its own: pytest's numbered temporary folders are shared by every session of this user,
    # and a session made here would count toward the three kept, deleting the outer session's (its PostgreSQL).
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'tmp'}",
                           name.group(1)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0 and " passed" in done.stdout and "skipped" not in done.stdout, (
        f"{example.id}:\n{done.stdout}\n{done.stderr}")


def test_sql_and_output_examples_sit_on_pages_whose_python_runs() -> None:
    """They are checked by the page's Python test: a page without Python examples would leave them unchecked."""
    for example in EXAMPLES:
        if example.language in ("sql", "output"):
            assert example.page in PYTHON, f"{example.id}: no Python example on the page runs it"


# --------------------------------------------------------------------------- bash
@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.language == "bash" and e.mode == "run"], ids=lambda e: e.id)
def test_a_bash_example_runs(example: Example, docs_stack: DocsStack, tmp_path: Path) -> None:
    env = {**docs_stack.env, **docs_stack.paused()}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", example.code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 0, f"{example.id}:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.mode == "check"], ids=lambda e: e.id)
def test_a_checked_example_names_real_commands_and_options(example: Example) -> None:
    assert example.language == "bash", f"{example.id}: only bash examples may be checked rather than run"
    commands = _commands(example.code)
    assert commands, example.id
    for words in commands:
        program = words[0]
        if program == "hitl":
            _parse_hitl(words[1:], example.id)
        elif program == "temporal":
            _parse_temporal(words[1:], example.id)
        elif program == "python":
            _parse_python(words[1:], example.id)
        else:
            assert program in PROGRAMS_CHECKED_ELSEWHERE, f"{example.id}: {program} can neither run here nor be checked"
        for word in words[1:]:
            if word.startswith(("./", ".env.", "requirements/", "examples/")) or word == "pyproject.toml":
                assert (ROOT / word.split("=")[-1]).exists(), f"{example.id}: no {word} in the repository"


def _commands(code: str) -> list[list[str]]:
    """Each simple command of a script: words after leading VAR=value assignments, split at | && ; &."""
    joined = code.replace("\\\n", " ")
    commands: list[list[str]] = []
    for line in joined.split("\n"):
        lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] = []
        redirected = False
        for token in list(lexer) + [";"]:
            if redirected:  # the target of a redirection
                redirected = False
                continue
            if token in (">", ">>", "<", "2>", "2>>"):
                redirected = True
                continue
            if token and set(token) <= set("|&;"):
                while current and re.match(r"^[A-Z_][A-Z0-9_]*=", current[0]):
                    current.pop(0)
                if current and current[0] not in ("export", "for", "do", "done"):
                    commands.append(current)
                current = []
            else:
                current.append(token)
    return commands


def _parse_hitl(args: list[str], where: str) -> None:
    """The command line as the `hitl` command itself parses it: an unknown command or option fails."""
    command: Any = typer.main.get_command(hitl_app)
    path: list[str] = []
    rest = list(args)
    parent = None
    while hasattr(command, "list_commands"):
        ctx = command.context_class(command, info_name=" ".join(["hitl", *path]), parent=parent)
        assert rest, f"{where}: `hitl {' '.join(path)}` needs a command"
        name, rest = rest[0], rest[1:]
        sub = command.get_command(ctx, name)
        assert sub is not None, f"{where}: hitl {' '.join(path)} has no command {name!r}"
        command, parent, path = sub, ctx, [*path, name]
    try:
        command.make_context(" ".join(["hitl", *path]), rest, parent=parent)
    except Exception as exc:  # click's UsageError, from typer's own copy of click
        raise AssertionError(f"{where}: hitl {' '.join(path)} {shlex.join(rest)}: {exc}") from None


def _parse_python(args: list[str], where: str) -> None:
    """``python -m MODULE ...`` asks the module's own --help for each option; ``python dev.py CMD`` checks CMD."""
    if args[:1] == ["-c"]:
        return
    if args[:1] == ["dev.py"]:
        assert args[1] in ("demo", "test", "docs"), f"{where}: dev.py has no command {args[1]!r}"
        return
    assert args[:1] == ["-m"], f"{where}: python {shlex.join(args)}: only -m, -c and dev.py are checked"
    help_text = subprocess.run([sys.executable, "-m", args[1], "--help"], capture_output=True, text=True, cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}, timeout=120)
    assert help_text.returncode == 0, f"{where}: python -m {args[1]} --help failed:\n{help_text.stderr}"
    for flag in (a.split("=")[0] for a in args[2:] if a.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text.stdout), f"{where}: python -m {args[1]} has no {flag}"


def _parse_temporal(args: list[str], where: str) -> None:
    words = [w for w in args if not w.startswith("-")]
    path = words[:3] if words[:1] in (["operator"], ["worker"]) else words[:2]
    help_text = subprocess.run([stack.binary("temporal"), *path, "--help"], capture_output=True, text=True).stdout
    global_flags = subprocess.run([stack.binary("temporal"), "options"], capture_output=True, text=True).stdout
    assert "Usage:" in help_text, f"{where}: temporal {' '.join(path)} is not a command"
    for flag in (a.split("=")[0] for a in args if a.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text + global_flags), (
            f"{where}: temporal {' '.join(path)} has no {flag}")
