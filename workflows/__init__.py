"""Workflow code: a run as a Temporal workflow (``AgentRunWorkflow``; a team's run is one too).

Owns: the run's state machine (model turn, tool calls, pauses, decisions, deadlines, the audit outbox).
May import: ``hitl._wire`` (every payload and name that crosses the boundary), the kernel leaves
(``hitl.errors``, ``limits``, ``decisions``, ``policy``, ``run``, ``ids``, ``identity``) and
``hitl._core.registry`` (the one upward arrow: finding an agent's definition by name, whose tools'
schemas, ``hitl.tools``, check an approver's edited arguments).
Invariants: deterministic (``workflow.now()``, ``workflow.uuid4()``, no clocks, no randomness); no I/O,
which is what ``activities/`` is for; every change to what a run does is patched
(``generation.patched``), and the recorded histories in ``tests/histories/`` must keep replaying; no
handler raises into the workflow task (refusals are recorded, never thrown).
What the sandbox passes through is declared once, with reasons: the one ``imports_passed_through()`` block of
``agent_run`` (the other modules are passed through by it).
"""

from hitl.workflows.agent_run import AgentRunWorkflow

__all__ = ["AgentRunWorkflow"]
