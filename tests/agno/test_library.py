"""Installed from its wheel, hitl is one well-behaved library: only `hitl` in site-packages, and a `hitl` command
that serves agents beside a project of its own, which has its own `workflows` package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

AGENTS = '''
from hitl import Agent, OpenAIChat, tool

import workflows  # the project's own package, which hitl must neither shadow nor be shadowed by

@tool(requires_confirmation=True)
def ship(order: str) -> str:
    """Ship an order."""
    return f"shipped {order} ({workflows.WHO})"

agent = Agent(OpenAIChat("lib-model"), tools=[ship])
'''
CLIENT = '''
import sys
from myagents import agent
r = agent.run("ship o-5")
print("paused", r.is_paused, r.requirements[0].tool_execution.tool_name)
r.requirements[0].confirm(resolved_by="ops")
done = agent.continue_run(r.run_id, r.requirements)
print("done", done.status, done.content)
import time
for _ in range(100):  # the answer comes before the run closes (its audit records first), and visibility follows that
    listed = [s.status for s in agent.list_runs()]
    if listed == ["completed"]:
        break
    time.sleep(0.1)
print("listed", listed)
'''
SCRIPT = {"scripts": {"lib-model": {"rules": [{"turns": [
    {"tool_calls": [{"name": "ship", "arguments": {"order": "o-5"}}]}, {"content": "{results}"}]}]}}}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hitl's wheel, built from this checkout and installed with `[local]` into a fresh venv."""
    where = tmp_path_factory.mktemp("lib")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(where / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    [wheel] = (where / "dist").glob("hitl-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(where / "venv")], check=True, timeout=120)
    subprocess.run([str(where / "venv" / "bin" / "pip"), "install", "-q", f"{wheel}[local]"], check=True,
                   capture_output=True, timeout=600)
    return where / "venv"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project with the usual Temporal layout: its own `workflows` and `activities` packages."""
    for package in ("workflows", "activities"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f'WHO = "the project\'s own {package}"\n')
    (tmp_path / "myagents.py").write_text(AGENTS)
    (tmp_path / "client.py").write_text(CLIENT)
    (tmp_path / "model.json").write_text(json.dumps(SCRIPT))
    return tmp_path


@pytest.mark.slow  # builds hitl's wheel into a fresh virtualenv
def test_the_wheel_installs_only_hitl(installed: Path):
    """site-packages holds `hitl` and its metadata, no top-level `workflows`, `activities`, `worker` or `starter`."""
    [site] = installed.glob("lib/python*/site-packages")
    ours = (site / "hitl-0.1.0.dist-info" / "RECORD").read_text().splitlines()
    tops = {line.split("/")[0].split(",")[0] for line in ours}
    assert tops <= {"hitl", "hitl-0.1.0.dist-info", "..", "bin"}, tops
    for name in ("workflows", "activities", "worker.py", "starter.py"):
        assert not (site / name).exists(), name
    assert (site / "hitl" / "workflows" / "agent_run.py").exists() and (installed / "bin" / "hitl").exists()


def _wait_for(proc: subprocess.Popen[bytes], log: Path, text: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace")
        if text in content:
            return content
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {content[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared: {log.read_text(errors='replace')[-3000:]}")


@pytest.mark.slow  # builds hitl's wheel into a fresh virtualenv
def test_hitl_dev_and_hitl_worker_serve_a_project_that_has_its_own_workflows_package(installed: Path, project: Path):
    """`hitl dev` starts Temporal and a scripted model; `hitl worker --agents myagents` serves the project's agent."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "OPENAI_", "DATABASE_", "PYTHON"))}
    env["PATH"] = f"{installed / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    dev_log, worker_log = project / "dev.log", project / "worker.log"
    with open(dev_log, "wb") as out:
        dev = subprocess.Popen([str(installed / "bin" / "hitl"), "dev", "--port", "0", "--no-postgres",
                                "--model-script", "model.json", "--data-dir", str(project / ".hitl")],
                               cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT)
    worker = None
    try:
        text = _wait_for(dev, dev_log, "ready; Ctrl-C stops it")
        exports = dict(line.removeprefix("export ").split("=", 1) for line in text.splitlines() if line.startswith("export "))
        assert {"TEMPORAL_ADDRESS", "OPENAI_BASE_URL"} <= set(exports), text
        env.update(exports)
        with open(worker_log, "wb") as out:
            worker = subprocess.Popen([str(installed / "bin" / "hitl"), "worker", "--agents", "myagents"],
                                      cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT)
        _wait_for(worker, worker_log, "worker ready")
        out = subprocess.run([str(installed / "bin" / "python"), "client.py"], cwd=project, env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr + worker_log.read_text()[-2000:]
        assert "paused True ship" in out.stdout
        assert "done completed shipped o-5 (the project's own workflows)" in out.stdout, out.stdout
        assert "listed ['completed']" in out.stdout, out.stdout
    finally:
        for proc in (worker, dev):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    assert dev.returncode == 0, dev_log.read_text()[-2000:]


@pytest.mark.slow  # builds hitl's wheel into a fresh virtualenv
def test_a_project_module_is_imported_as_the_project_has_it(installed: Path, project: Path):
    """In the project, `workflows` is the project's and `hitl.workflows` is hitl's."""
    code = textwrap.dedent("""
        import workflows, hitl.workflows, hitl.activities
        print(workflows.WHO, "|", hitl.workflows.AgentRunWorkflow.__name__, "|", hitl.activities.ALL[0].__name__)
    """)
    out = subprocess.run([str(installed / "bin" / "python"), "-c", code], cwd=project, capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "the project's own workflows | AgentRunWorkflow | call_model", out.stderr
