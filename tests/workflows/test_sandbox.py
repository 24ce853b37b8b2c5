"""The sandbox's pass-through list (hitl.worker.sandbox) covers what the run workflow imports, and leaves the
workflow module itself to the sandbox's guard."""

from __future__ import annotations

import ast
from pathlib import Path

from temporalio.worker.workflow_sandbox._importer import Importer

from hitl.worker import sandbox

ROOT = Path(__file__).resolve().parents[2]


def _passed_through(name: str) -> bool:
    return Importer(sandbox.restrictions(), None).module_configured_passthrough(name)  # type: ignore[arg-type]


def test_everything_the_run_workflow_imports_of_hitl_is_passed_through():
    tree = ast.parse((ROOT / "workflows" / "agent_run.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    ours = sorted(m for m in imported if m.split(".")[0] in ("hitl", "pydantic"))
    assert ours and all(_passed_through(m) for m in ours), [m for m in ours if not _passed_through(m)]


def test_every_workflow_helper_is_listed_and_the_workflow_is_not():
    helpers = {f"hitl.workflows.{p.stem}" for p in (ROOT / "workflows").glob("*.py")} - {
        "hitl.workflows.__init__", "hitl.workflows.agent_run"}
    assert helpers == {m for m in sandbox.PASSED_THROUGH if m.startswith("hitl.workflows.")}
    assert not _passed_through("hitl.workflows.agent_run") and not _passed_through("hitl.workflows")
    assert all(reason for reason in sandbox.PASSED_THROUGH.values())
