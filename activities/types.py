"""What crosses the activity boundary: one pydantic model in, one out, per activity.

New fields must be optional with defaults: these are recorded in the histories of running
workflows, and a worker must read what an older one wrote.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from hitl.run import RequirementKind, UserInputField

__all__ = ["ModelRequest", "ModelTurn", "ToolCallPlan", "ToolRunRequest", "ToolRunResult", "Message"]

Message = dict[str, Any]
"""A conversation message in Chat Completions form (role, content, tool_calls, tool_call_id)."""

CALL_MODEL = "hitl.call_model"
RUN_TOOL = "hitl.run_tool"


class ModelRequest(BaseModel):
    run_id: str
    agent_name: str
    messages: list[Message]


class ToolCallPlan(BaseModel):
    """One tool call of a model turn, with what the worker decided about it."""

    tool_call_id: str
    tool_name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    kind: RequirementKind | None = None
    """The human step the call waits for, or None to run it at once."""
    invalid: str | None = None
    """Why the call cannot run (unknown tool, arguments that fail the schema): told to the model."""
    user_input_schema: list[UserInputField] | None = None
    idempotent: bool = True
    timeout_seconds: float = 300.0
    max_attempts: int = 3


class ModelTurn(BaseModel):
    content: str | None = None
    assistant_message: Message
    tool_calls: list[ToolCallPlan] = Field(default_factory=list)


class ToolRunRequest(BaseModel):
    run_id: str
    agent_name: str
    tool_name: str
    tool_call_id: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolRunResult(BaseModel):
    output: str
