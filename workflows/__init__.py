"""Workflow code: deterministic, sandbox-safe. No I/O here; that is what activities/ is for."""

from hitl.workflows.agent_run import AgentRunWorkflow

__all__ = ["AgentRunWorkflow"]
