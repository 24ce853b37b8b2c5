"""What a run looks like from outside: its status, its output and the requirements it waits on."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, Field, PrivateAttr

from hitl.decisions import Confirm, Decision, ProvideInput, ProvideResult, Reject, refuse_unsafe
from hitl.errors import InvalidDecisionError, RequirementAlreadyResolvedError
from hitl.policy import ApprovalPolicy
from hitl.run.base import RunContext

__all__ = ["RunContext", "RunStatus", "ToolExecution", "UserInputField", "RunRequirement", "RunOutput", "RunSummary", "RequirementKind"]

RequirementKind = Literal["confirmation", "user_input", "external_execution"]


class RunStatus(str, Enum):
    """Where a run stands."""

    running = "running"
    paused = "paused"
    completed = "completed"
    error = "error"
    cancelled = "cancelled"

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        return self in (RunStatus.completed, RunStatus.error, RunStatus.cancelled)


class ToolExecution(BaseModel):
    """One tool call the model asked for."""

    tool_name: str
    tool_call_id: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    original_arguments: dict[str, Any] | None = None
    """The model's arguments when an approver corrected them with ``confirm(arguments=...)``."""
    result: str | None = None


class UserInputField(BaseModel):
    """One argument of a tool call, for a person to fill when ``value`` is None."""

    name: str
    field_type: str
    description: str | None = None
    value: Any = None


class RunRequirement(BaseModel):
    """A tool call that waits for a person or another service.

    Decide it with :meth:`confirm`, :meth:`reject`, :meth:`provide_input` or
    :meth:`provide_result`, then pass it to ``Agent.continue_run``.
    """

    id: str
    kind: RequirementKind
    tool_execution: ToolExecution
    user_input_schema: list[UserInputField] | None = None
    note: str | None = None
    """Why the requirement exists when it is not the tool's own flag (an uncertain outcome)."""
    uncertain_outcome: bool = False
    approval_type: Literal["required", "audit", "none"] = "none"
    """How the tool's ``@approval`` marks it (``none`` without one)."""
    policy: ApprovalPolicy | None = None
    """Who may decide and what the deadline does (``@approval(approvers=..., timeout=...)``)."""
    deadline: float | None = None
    """Epoch seconds at which the policy's ``on_timeout`` acts, if nobody decided."""
    approvals: list[str] = Field(default_factory=list)
    """Who has confirmed so far, when the policy asks for a quorum."""
    escalation_level: int = 0
    """How many of the policy's escalation steps have fired."""
    paused_at: float | None = None
    """Epoch seconds the pause began: escalation steps are measured from here."""
    member_agent_name: str | None = None
    """On a team run: the member whose tool call this is (decide it on the team run all the same)."""
    member_run_id: str | None = None
    """On a team run: the member's own run (a child workflow); the id is ``<member_run_id>/<its id>``."""

    @property
    def approvers(self) -> list[str]:
        """Who may decide; empty means anyone."""
        return list(self.policy.approvers) if self.policy else []
    pause: int = 0
    """The pause (1, 2, ...) of the run that raised it."""
    created_at: int = 0
    resolution: Literal["confirmed", "rejected", "input_provided", "result_provided", "expired"] | None = None
    confirmed: bool | None = None
    rejection_reason: str | None = None
    resolved_by: str | None = None
    resolved_at: int | None = None

    _decision: Decision | None = PrivateAttr(default=None)

    @property
    def needs_confirmation(self) -> bool:
        return self.kind == "confirmation"

    @property
    def needs_user_input(self) -> bool:
        return self.kind == "user_input"

    @property
    def needs_external_execution(self) -> bool:
        return self.kind == "external_execution"

    @property
    def decision(self) -> Decision | None:
        """The decision made on this object and not yet sent."""
        return self._decision

    def is_resolved(self) -> bool:
        """Whether the run already has a decision for this requirement, or one is made here."""
        return self.resolution is not None or self._decision is not None

    def _decide(self, make: type[BaseModel], fields: dict[str, Any], kind: RequirementKind | None, verb: str) -> None:
        where = f"requirement {self.id!r} ({self.tool_execution.tool_name})"
        if self.resolution is not None:
            raise RequirementAlreadyResolvedError(
                f"requirement {self.id!r} ({self.tool_execution.tool_name}) was already resolved: {self.resolution}"
            )
        if kind is not None and self.kind != kind:
            raise InvalidDecisionError(
                f"requirement {self.id!r} ({self.tool_execution.tool_name}) needs {self.kind}; {verb}() does not apply"
            )
        try:
            decision = make(requirement_id=self.id, **fields)
        except pydantic.ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise InvalidDecisionError(f"{where}: {verb}() refused: {problems}") from None
        refuse_unsafe(decision, where)
        self._decision = decision  # type: ignore[assignment]

    def confirm(
        self, arguments: dict[str, Any] | None = None, *, resolved_by: str | None = None, remember: bool = False
    ) -> None:
        """Approve the call, optionally with corrected ``arguments`` (validated when sent).

        ``remember=True`` approves this tool for the rest of the run: its later calls run without
        a pause, each recorded on the audit trail as approved by that decision.
        """
        self._decide(Confirm, {"arguments": arguments, "resolved_by": resolved_by, "remember": remember},
                     "confirmation", "confirm")

    def reject(self, reason: str | None = None, *, note: str | None = None, resolved_by: str | None = None) -> None:
        """Refuse the call; the model is told, with ``reason`` (Agno's ``note=`` works too)."""
        self._decide(Reject, {"reason": reason or note, "resolved_by": resolved_by}, None, "reject")

    def provide_input(self, value: Any, *, resolved_by: str | None = None) -> None:
        """Fill the requested fields: a dict of field values, or one value when one field is asked."""
        self._decide(ProvideInput, {"value": value, "resolved_by": resolved_by}, "user_input", "provide_input")

    def provide_user_input(self, values: Any, *, resolved_by: str | None = None) -> None:
        """Agno's spelling of :meth:`provide_input`."""
        self.provide_input(values, resolved_by=resolved_by)

    def provide_result(self, result: Any, *, resolved_by: str | None = None) -> None:
        """Give the result of a tool executed outside the agent."""
        self._decide(ProvideResult, {"result": result, "resolved_by": resolved_by}, "external_execution", "provide_result")

    def set_external_execution_result(self, result: Any, *, resolved_by: str | None = None) -> None:
        """Agno's spelling of :meth:`provide_result`."""
        self.provide_result(result, resolved_by=resolved_by)


class RunOutput(BaseModel):
    """A run as it stands: returned by ``run``, ``continue_run`` and ``get_run``."""

    run_id: str
    agent_name: str = ""
    session_id: str | None = None
    status: RunStatus = RunStatus.running
    content: str | None = None
    error: str | None = None
    requirements: list[RunRequirement] = Field(default_factory=list)
    """The requirements of the latest pause, resolved ones included."""
    pauses: int = 0
    waiting_for_worker: str | None = None
    """Set by ``get_run`` when no worker can take the run now (none serves its agent): why.

    The run is not failed: it goes on as soon as a worker that serves its agent polls."""

    @property
    def is_paused(self) -> bool:
        return self.status == RunStatus.paused

    @property
    def active_requirements(self) -> list[RunRequirement]:
        """The requirements still waiting for a decision."""
        return [r for r in self.requirements if not r.is_resolved()]


class RunSummary(BaseModel):
    """One run as ``list_runs`` finds it, from its search attributes (no worker is asked)."""

    run_id: str
    agent_name: str | None = None
    status: str
    """hitl's status (running, paused, completed, cancelled, error), or Temporal's for a run that
    ended before it set one (terminated, timed_out...)."""
    pending_tools: list[str] = Field(default_factory=list)
    next_deadline: datetime | None = None
    team_run_id: str | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None
