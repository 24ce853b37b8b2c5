"""The run workflow's input and the state it carries across continue-as-new."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from activities.types import Message, ToolCallPlan
from hitl.run import RunRequirement

WORKFLOW_NAME = "AgentRun"


class PendingCall(BaseModel):
    """A tool call of the current turn, from the model's plan to its result."""

    plan: ToolCallPlan
    arguments: dict[str, Any] = Field(default_factory=dict)
    state: Literal["needs_human", "ready", "done"] = "ready"
    requirement_id: str | None = None
    output: str | None = None
    uncertain: bool = False
    """An attempt timed out or lost its worker, and the tool is not idempotent."""
    asks: int = 0
    """How many requirements this call has raised (a second one after an uncertain outcome)."""


class CarriedState(BaseModel):
    """Everything a run needs to go on after continue-as-new."""

    messages: list[Message]
    calls: list[PendingCall] = Field(default_factory=list)
    requirements: list[RunRequirement] = Field(default_factory=list)
    resolved_ids: list[str] = Field(default_factory=list)
    pauses: int = 0
    turn: int = 0


class RunInput(BaseModel):
    """How a run starts (``message``) or goes on after continue-as-new (``carried``)."""

    agent_name: str
    message: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    carried: CarriedState | None = None
    history_event_limit: int = Field(default=10_000, ge=50)
    """Continue-as-new once the history holds this many events, at the next clean boundary."""
