"""A team run's events at Agno's import path (``from agno.run.team import RunPausedEvent``).

The classes have the names of :mod:`hitl.run.agent`'s and are other classes: their ``event``
strings start with ``Team`` ("TeamRunPaused", "TeamRunContent"...) and they carry ``team_id``
and ``team_name``. A team's stream carries its member's events too, so Agno code tells them
apart by class::

    from hitl.run.team import RunPausedEvent as TeamRunPausedEvent

    for event in team.run("...", stream=True):
        if isinstance(event, TeamRunPausedEvent):  # the team's pause, not the member's
            ...

``TeamRunOutput`` is :class:`hitl.run.RunOutput`: a team's run has the same shape as an agent's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from time import time
from typing import Any, get_args

from hitl.run import RunOutput, RunRequirement, ToolExecution
from hitl.run.agent import BaseRunOutputEvent, _tools_of

__all__ = [
    "TeamRunOutput",
    "TeamRunEvent",
    "BaseTeamRunEvent",
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
    "TeamRunOutputEvent",
    "TEAM_RUN_OUTPUT_EVENT_TYPES",
]

TeamRunOutput = RunOutput
"""A team's run as it stands: the same class as an agent's (:class:`hitl.run.RunOutput`)."""


class TeamRunEvent(str, Enum):
    """The ``event`` string of each team run event, as Agno spells it."""

    run_started = "TeamRunStarted"
    run_content = "TeamRunContent"
    run_intermediate_content = "TeamRunIntermediateContent"
    run_content_completed = "TeamRunContentCompleted"
    run_completed = "TeamRunCompleted"
    run_error = "TeamRunError"
    run_cancelled = "TeamRunCancelled"
    pre_hook_started = "TeamPreHookStarted"
    pre_hook_completed = "TeamPreHookCompleted"
    post_hook_started = "TeamPostHookStarted"
    post_hook_completed = "TeamPostHookCompleted"
    tool_call_started = "TeamToolCallStarted"
    tool_call_completed = "TeamToolCallCompleted"
    tool_call_error = "TeamToolCallError"
    reasoning_started = "TeamReasoningStarted"
    reasoning_step = "TeamReasoningStep"
    reasoning_content_delta = "TeamReasoningContentDelta"
    reasoning_completed = "TeamReasoningCompleted"
    memory_update_started = "TeamMemoryUpdateStarted"
    memory_update_completed = "TeamMemoryUpdateCompleted"
    session_summary_started = "TeamSessionSummaryStarted"
    session_summary_completed = "TeamSessionSummaryCompleted"
    parser_model_response_started = "TeamParserModelResponseStarted"
    parser_model_response_completed = "TeamParserModelResponseCompleted"
    output_model_response_started = "TeamOutputModelResponseStarted"
    output_model_response_completed = "TeamOutputModelResponseCompleted"
    model_request_started = "TeamModelRequestStarted"
    model_request_completed = "TeamModelRequestCompleted"
    compression_started = "TeamCompressionStarted"
    compression_completed = "TeamCompressionCompleted"
    followups_started = "TeamFollowupsStarted"
    followups_completed = "TeamFollowupsCompleted"
    run_paused = "TeamRunPaused"
    run_continued = "TeamRunContinued"
    task_iteration_started = "TeamTaskIterationStarted"
    task_iteration_completed = "TeamTaskIterationCompleted"
    task_state_updated = "TeamTaskStateUpdated"
    task_created = "TeamTaskCreated"
    task_updated = "TeamTaskUpdated"
    custom_event = "CustomEvent"


@dataclass
class BaseTeamRunEvent(BaseRunOutputEvent):
    """Fields every team run event carries."""

    created_at: int = field(default_factory=lambda: int(time()))
    """Epoch seconds the event was made."""
    event: str = ""
    team_id: str = ""
    team_name: str = ""
    run_id: str | None = None
    parent_run_id: str | None = None
    session_id: str | None = None
    content: Any = None


@dataclass
class RunStartedEvent(BaseTeamRunEvent):
    """The team run started (``stream_events=True`` only)."""

    event: str = TeamRunEvent.run_started.value
    model: str = ""
    model_provider: str = ""


@dataclass
class RunContentEvent(BaseTeamRunEvent):
    """Text of the team's answer; concatenate the ``content`` of successive ones."""

    event: str = TeamRunEvent.run_content.value
    content: Any = None
    content_type: str = "str"
    reasoning_content: str | None = None


@dataclass
class IntermediateRunContentEvent(BaseTeamRunEvent):
    """Content the run replaced later (kept for Agno's name; hitl does not send it)."""

    event: str = TeamRunEvent.run_intermediate_content.value
    content: Any = None
    content_type: str = "str"


@dataclass
class RunContentCompletedEvent(BaseTeamRunEvent):
    """The team's answer is complete (``stream_events=True`` only)."""

    event: str = TeamRunEvent.run_content_completed.value


@dataclass
class ToolCallStartedEvent(BaseTeamRunEvent):
    """One of the leader's tool calls began (``stream_events=True`` only)."""

    event: str = TeamRunEvent.tool_call_started.value
    tool: ToolExecution | None = None


@dataclass
class ToolCallCompletedEvent(BaseTeamRunEvent):
    """One of the leader's tool calls ended; ``content`` is its result."""

    event: str = TeamRunEvent.tool_call_completed.value
    tool: ToolExecution | None = None
    content: Any = None


@dataclass
class ToolCallErrorEvent(BaseTeamRunEvent):
    """One of the leader's tool calls failed (kept for Agno's name)."""

    event: str = TeamRunEvent.tool_call_error.value
    tool: ToolExecution | None = None
    error: str | None = None


@dataclass
class RunPausedEvent(BaseTeamRunEvent):
    """The team run waits for people: its own tool calls' requirements and its members'.

    A member's requirement has ``member_agent_name`` set. ``content`` is Agno's team paused text
    ("Team run paused. The following require input:\\n- <member>: <tool> requires confirmation").
    """

    event: str = TeamRunEvent.run_paused.value
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
class RunContinuedEvent(BaseTeamRunEvent):
    """A paused team run goes on (``stream_events=True`` only, first event of a continue)."""

    event: str = TeamRunEvent.run_continued.value


@dataclass
class RunCompletedEvent(BaseTeamRunEvent):
    """The team run ended with its answer (``stream_events=True`` only; also after a cancel)."""

    event: str = TeamRunEvent.run_completed.value
    content: Any = None
    content_type: str = "str"
    reasoning_content: str | None = None
    member_responses: list[RunOutput] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    session_state: dict[str, Any] | None = None


@dataclass
class RunErrorEvent(BaseTeamRunEvent):
    """The team run failed; ``content`` is the error."""

    event: str = TeamRunEvent.run_error.value
    content: str | None = None
    error_type: str | None = None
    error_id: str | None = None
    additional_data: dict[str, Any] | None = None


@dataclass
class RunCancelledEvent(BaseTeamRunEvent):
    """The team run was cancelled; ``reason`` says why."""

    event: str = TeamRunEvent.run_cancelled.value
    reason: str | None = None

    @property
    def is_cancelled(self) -> bool:
        return True


@dataclass
class CustomEvent(BaseTeamRunEvent):
    """An application's own event (kept for Agno's name)."""

    event: str = TeamRunEvent.custom_event.value


TeamRunOutputEvent = (
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
"""Any event of the team's own that a team's streamed run yields (its members' are agent events)."""

TEAM_RUN_OUTPUT_EVENT_TYPES: tuple[type, ...] = get_args(TeamRunOutputEvent)
"""The classes of :data:`TeamRunOutputEvent`, for ``isinstance``."""
