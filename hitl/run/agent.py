"""An agent run's events at Agno's import path (``from agno.run.agent import RunPausedEvent``).

``Agent.run(..., stream=True)`` yields these: the text of the run as :class:`RunContentEvent`,
a :class:`RunPausedEvent` when the run waits for a person, and with ``stream_events=True`` the
events around them (:class:`RunStartedEvent`, :class:`RunCompletedEvent`...). They carry Agno's
names, event strings and fields, so code written against Agno reads them unchanged: every event
has ``event``, ``created_at``, ``agent_id``, ``agent_name``, ``run_id``, ``parent_run_id`` (the
team run, for a member's events), ``session_id`` and ``content``, and answers ``is_paused`` and
``is_cancelled``.

A team's events live in :mod:`hitl.run.team`: classes of the same names that are not these
(``isinstance(event, agno.run.team.RunPausedEvent)`` tells a team's pause from its member's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from time import time
from typing import Any, get_args

from pydantic import BaseModel

from hitl.run import RunOutput, RunRequirement, ToolExecution

__all__ = [
    "RunOutput",
    "RunEvent",
    "BaseRunOutputEvent",
    "BaseAgentRunEvent",
    "RunStartedEvent",
    "RunContentEvent",
    "IntermediateRunContentEvent",
    "RunContentCompletedEvent",
    "ToolCallStartedEvent",
    "ToolCallCompletedEvent",
    "ToolCallErrorEvent",
    "RunPausedEvent",
    "RunContinuedEvent",
    "RunCompletedEvent",
    "RunErrorEvent",
    "RunCancelledEvent",
    "CustomEvent",
    "RunOutputEvent",
    "RUN_OUTPUT_EVENT_TYPES",
]


class RunEvent(str, Enum):
    """The ``event`` string of each agent run event, as Agno spells it."""

    run_started = "RunStarted"
    run_content = "RunContent"
    run_content_completed = "RunContentCompleted"
    run_intermediate_content = "RunIntermediateContent"
    run_completed = "RunCompleted"
    run_error = "RunError"
    run_cancelled = "RunCancelled"
    run_paused = "RunPaused"
    run_continued = "RunContinued"
    pre_hook_started = "PreHookStarted"
    pre_hook_completed = "PreHookCompleted"
    post_hook_started = "PostHookStarted"
    post_hook_completed = "PostHookCompleted"
    tool_call_started = "ToolCallStarted"
    tool_call_completed = "ToolCallCompleted"
    tool_call_error = "ToolCallError"
    reasoning_started = "ReasoningStarted"
    reasoning_step = "ReasoningStep"
    reasoning_content_delta = "ReasoningContentDelta"
    reasoning_completed = "ReasoningCompleted"
    memory_update_started = "MemoryUpdateStarted"
    memory_update_completed = "MemoryUpdateCompleted"
    session_summary_started = "SessionSummaryStarted"
    session_summary_completed = "SessionSummaryCompleted"
    parser_model_response_started = "ParserModelResponseStarted"
    parser_model_response_completed = "ParserModelResponseCompleted"
    output_model_response_started = "OutputModelResponseStarted"
    output_model_response_completed = "OutputModelResponseCompleted"
    model_request_started = "ModelRequestStarted"
    model_request_completed = "ModelRequestCompleted"
    compression_started = "CompressionStarted"
    compression_completed = "CompressionCompleted"
    compaction_started = "CompactionStarted"
    compaction_completed = "CompactionCompleted"
    followups_started = "FollowupsStarted"
    followups_completed = "FollowupsCompleted"
    custom_event = "CustomEvent"


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data: models dumped, enums by value, dataclasses as dicts."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value) if getattr(value, f.name) is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


@dataclass
class BaseRunOutputEvent:
    """What every run event answers, an agent's or a team's."""

    @property
    def is_paused(self) -> bool:
        """True only on a paused event."""
        return False

    @property
    def is_cancelled(self) -> bool:
        """True only on a cancelled event."""
        return False

    def to_dict(self) -> dict[str, Any]:
        """The event's fields that are set, as JSON-ready data (requirements and tools as dicts)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None}

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, default=str)


@dataclass
class BaseAgentRunEvent(BaseRunOutputEvent):
    """Fields every agent run event carries."""

    created_at: int = field(default_factory=lambda: int(time()))
    """Epoch seconds the event was made."""
    event: str = ""
    agent_id: str = ""
    agent_name: str = ""
    run_id: str | None = None
    parent_run_id: str | None = None
    """The team run, on a member's events; None otherwise."""
    session_id: str | None = None
    tools: list[ToolExecution] | None = None
    content: Any = None

    @property
    def tools_requiring_confirmation(self) -> list[ToolExecution]:
        return []

    @property
    def tools_requiring_user_input(self) -> list[ToolExecution]:
        return []

    @property
    def tools_awaiting_external_execution(self) -> list[ToolExecution]:
        return []


@dataclass
class RunStartedEvent(BaseAgentRunEvent):
    """The run started (``stream_events=True`` only)."""

    event: str = RunEvent.run_started.value
    model: str = ""
    model_provider: str = ""


@dataclass
class RunContentEvent(BaseAgentRunEvent):
    """Text of the run's answer; concatenate the ``content`` of successive ones."""

    event: str = RunEvent.run_content.value
    content: Any = None
    content_type: str = "str"
    reasoning_content: str | None = None


@dataclass
class IntermediateRunContentEvent(BaseAgentRunEvent):
    """Content the run replaced later (kept for Agno's name; hitl does not send it)."""

    event: str = RunEvent.run_intermediate_content.value
    content: Any = None
    content_type: str = "str"


@dataclass
class RunContentCompletedEvent(BaseAgentRunEvent):
    """The answer's text is complete (``stream_events=True`` only)."""

    event: str = RunEvent.run_content_completed.value


@dataclass
class ToolCallStartedEvent(BaseAgentRunEvent):
    """A tool call began (``stream_events=True`` only)."""

    event: str = RunEvent.tool_call_started.value
    tool: ToolExecution | None = None


@dataclass
class ToolCallCompletedEvent(BaseAgentRunEvent):
    """A tool call ended; ``content`` is its result (``stream_events=True`` only)."""

    event: str = RunEvent.tool_call_completed.value
    tool: ToolExecution | None = None
    content: Any = None


@dataclass
class ToolCallErrorEvent(BaseAgentRunEvent):
    """A tool call failed (kept for Agno's name)."""

    event: str = RunEvent.tool_call_error.value
    tool: ToolExecution | None = None
    error: str | None = None


def _tools_of(requirements: list[RunRequirement] | None, kind: str) -> list[ToolExecution]:
    return [r.tool_execution for r in requirements or [] if r.kind == kind]


@dataclass
class RunPausedEvent(BaseAgentRunEvent):
    """The run waits for people: decide ``requirements`` and pass them to ``continue_run``.

    ``content`` is Agno's paused text ("I have tools to execute, but I need confirmation.").
    """

    event: str = RunEvent.run_paused.value
    tools: list[ToolExecution] | None = None
    requirements: list[RunRequirement] | None = None

    @property
    def is_paused(self) -> bool:
        return True

    @property
    def active_requirements(self) -> list[RunRequirement]:
        """The requirements still waiting for a decision."""
        return [r for r in self.requirements or [] if not r.is_resolved()]

    @property
    def tools_requiring_confirmation(self) -> list[ToolExecution]:
        return _tools_of(self.requirements, "confirmation")

    @property
    def tools_requiring_user_input(self) -> list[ToolExecution]:
        return _tools_of(self.requirements, "user_input")

    @property
    def tools_awaiting_external_execution(self) -> list[ToolExecution]:
        return _tools_of(self.requirements, "external_execution")


@dataclass
class RunContinuedEvent(BaseAgentRunEvent):
    """A paused run goes on (``stream_events=True`` only, first event of a continue)."""

    event: str = RunEvent.run_continued.value


@dataclass
class RunCompletedEvent(BaseAgentRunEvent):
    """The run ended with its answer (``stream_events=True`` only; also after a cancel)."""

    event: str = RunEvent.run_completed.value
    content: Any = None
    content_type: str = "str"
    reasoning_content: str | None = None
    metadata: dict[str, Any] | None = None
    session_state: dict[str, Any] | None = None


@dataclass
class RunErrorEvent(BaseAgentRunEvent):
    """The run failed; ``content`` is the error."""

    event: str = RunEvent.run_error.value
    content: str | None = None
    error_type: str | None = None
    error_id: str | None = None
    additional_data: dict[str, Any] | None = None


@dataclass
class RunCancelledEvent(BaseAgentRunEvent):
    """The run was cancelled; ``reason`` says why."""

    event: str = RunEvent.run_cancelled.value
    reason: str | None = None

    @property
    def is_cancelled(self) -> bool:
        return True


@dataclass
class CustomEvent(BaseAgentRunEvent):
    """An application's own event (kept for Agno's name)."""

    event: str = RunEvent.custom_event.value


RunOutputEvent = (
    RunStartedEvent
    | RunContentEvent
    | IntermediateRunContentEvent
    | RunContentCompletedEvent
    | RunCompletedEvent
    | RunErrorEvent
    | RunCancelledEvent
    | RunPausedEvent
    | RunContinuedEvent
    | ToolCallStartedEvent
    | ToolCallCompletedEvent
    | ToolCallErrorEvent
    | CustomEvent
)
"""Any event an agent's streamed run yields."""

RUN_OUTPUT_EVENT_TYPES: tuple[type, ...] = get_args(RunOutputEvent)
"""The classes of :data:`RunOutputEvent`, for ``isinstance``."""
