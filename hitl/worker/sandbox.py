"""What Temporal's workflow sandbox passes through, in one place, each with its reason.

The sandbox (``HITL_WORKFLOW_SANDBOX=1``, and the replay tests over recorded histories) imports the run
workflow's module, ``hitl.workflows.agent_run``, afresh for every run and guards what its code calls.
Everything that module imports is passed through: imported once, outside the sandbox, and shared by runs.
That is safe for these because none keeps state a run could change, and the workflow helpers among them are
deterministic by the same rules as the workflow (no I/O, no clocks; every change patched; the replay test).
The workflow module itself is not passed through, so the sandbox still guards its own code.
``agent_run`` also imports them inside one ``imports_passed_through()`` block, so it stays importable under any
sandbox, Temporal's default included (a ``Replayer`` built without :func:`runner`); the other workflow
modules need no block, being passed through themselves. ``tests/workflows/test_sandbox.py`` keeps the two in step.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

__all__ = ["PASSED_THROUGH", "restrictions", "runner"]

_HELPER = "workflow code the run delegates to: deterministic, no I/O, kept in step by the replay test"

PASSED_THROUGH: dict[str, str] = {
    "pydantic": "payload models are validated in every activation; its import is costly and has no run state",
    "hitl._wire": "the contracts crossing the workflow boundary: payload models and names, no state",
    "hitl._core.registry": "the agents this worker defines, found by name (the documented upward arrow); read only",
    "hitl.errors": "error classes raised and translated by the workflow",
    "hitl.run": "RunOutput and RunRequirement, the run's own data model",
    "hitl.decisions": "the decision models the handlers validate",
    "hitl.policy": "approval policies: data and pure functions",
    "hitl.limits": "size and depth limits: constants and pure functions",
    "hitl.ids": "id rules: pure functions",
    "hitl.identity": "principals and reserved names: data and pure functions",
    "hitl.observability": "spans and metrics emitted through the SDK's workflow-safe APIs, and search attribute keys",
    "hitl.security.signing": "verifying a decision's signature: pure, keys given by the worker",
    **{f"hitl.workflows.{name}": _HELPER for name in (
        "audit", "calls", "changes", "deadlines", "decisions", "direct", "generation", "handlers", "observe",
        "outbox", "payloads", "refusals", "requirements", "signatures", "team", "upgrade", "verdicts",
        "visibility")},
}


def restrictions() -> SandboxRestrictions:
    """Temporal's default restrictions with :data:`PASSED_THROUGH` passed through."""
    return SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH)


def runner() -> SandboxedWorkflowRunner:
    """The sandboxed runner hitl's workers (``HITL_WORKFLOW_SANDBOX=1``) and replays use."""
    return SandboxedWorkflowRunner(restrictions=restrictions())
