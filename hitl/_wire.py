"""What crosses the workflow and activity boundaries: one pydantic model in, one out, each.

Shared by the client (hitl), the activities and the workflow, so it lives below all three.
New fields must be optional with defaults: these are recorded in the histories of running
workflows, and a worker must read what an older one wrote.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hitl.decisions import Decision
from hitl.policy import ApprovalPolicy
from hitl.run import RequirementKind, RunOutput, RunRequirement, UserInputField

Message = dict[str, Any]


NotificationKind = Literal["requested", "reminder", "escalated", "expired"]
"""What happened to the pending approval a :class:`Notification` is about."""


class NotificationLink(BaseModel):
    """A one-click decision link for one approver and one decision (a bearer credential: never log it)."""

    approver: str
    decision: Literal["approved", "rejected"]
    url: str = Field(repr=False)
    expires_at: float


class Notification(BaseModel):
    """What happened to a pending approval, for the people who may decide it."""

    kind: NotificationKind
    run_id: str
    agent_name: str
    requirement_id: str
    tool_name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    approvers: list[str] = Field(default_factory=list)
    deadline: float | None = None
    escalation_level: int = 0
    at: float
    links: list[NotificationLink] = Field(default_factory=list, repr=False)
    """Per named approver, an approve and a reject link; empty without a link secret, for ``group:``
    approvers and on ``expired``. Set by the notification activity only: a run's history never
    holds them (the field has a default, so histories recorded before it still decode)."""

    def links_for(self, approver: str) -> dict[str, str]:
        """The approver's link URLs by decision (``approved``, ``rejected``); empty when it has none."""
        return {link.decision: link.url for link in self.links if link.approver == approver}

"""A conversation message in Chat Completions form (role, content, tool_calls, tool_call_id)."""

WORKFLOW_NAME = "AgentRun"
CALL_MODEL = "hitl.call_model"
RUN_TOOL = "hitl.run_tool"
TOOL_OUTCOME_UNKNOWN = "ToolOutcomeUnknown"
"""The error type of a tool call that was sent and never answered (an MCP server's): for a tool that is not
idempotent, the run pauses on an uncertain outcome, as when its worker died mid-call."""

DECISION_HANDLERS = frozenset({"continue_run", "decide", "confirm", "reject", "provide_input", "provide_result",
                               "team_decision"})
"""Updates and signals that carry a decision: their handlers run in the sender's trace."""


class McpToolSpec(BaseModel):
    """A tool of an MCP server as a run recorded it when it first called its model (``hitl.tools.mcp``)."""

    server: str
    name: str
    """As offered to the model (with the toolset's ``tool_name_prefix``)."""
    remote_name: str
    """As the server names it."""
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=dict)
    kind: RequirementKind | None = None
    """The human step each call waits for (approval fails closed), or None to run it at once."""
    idempotent: bool = False
    destructive: bool = False


class ModelRequest(BaseModel):
    run_id: str
    agent_name: str
    messages: list[Message]
    session_id: str | None = None
    """The run's session: its state fills ``{key}`` in the instructions (``session_state``)."""
    mcp_tools: list[McpToolSpec] | None = None
    """The MCP tools the run recorded; None before it has (the model call lists them, once)."""


class MemberPlan(BaseModel):
    """A team's delegation call: which member runs the task, and how its run is set up."""

    agent_name: str
    audit: bool = False
    audit_agent: str | None = None
    """Whose database the member's approvals are mirrored into, when not its own (its team's)."""
    notify: bool = False
    history_event_limit: int = Field(default=10_000, ge=20)


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
    approval_type: str = "none"
    """required, audit or none (no @approval): recorded on the approval record."""
    policy: ApprovalPolicy | None = None
    timeout_seconds: float = 300.0
    max_attempts: int = 3
    member: MemberPlan | None = None
    """Set on a team's delegation call: the task runs as the member's own run, a child workflow."""
    mcp_server: str | None = None
    """The MCP server whose tool this is, or None for the agent's own."""
    mcp_tool: str | None = None
    """The tool's name on its MCP server (the recorded tool's ``remote_name``)."""


class ModelTurn(BaseModel):
    content: str | None = None
    assistant_message: Message
    tool_calls: list[ToolCallPlan] = Field(default_factory=list)
    mcp_tools: list[McpToolSpec] | None = None
    """The MCP tools listed for this turn, when the request had none recorded: the run records them."""


class ToolRunRequest(BaseModel):
    run_id: str
    agent_name: str
    tool_name: str
    tool_call_id: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    session_id: str | None = None
    user_id: str | None = None
    """The run's session and user, for a tool's ``run_context`` on whichever worker runs it."""
    mcp_server: str | None = None
    """The MCP server to call (``mcp_tool`` by its name there), or None for the agent's own tool."""
    mcp_tool: str | None = None


class ToolRunResult(BaseModel):
    output: str


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
    resolutions: dict[str, str] = Field(default_factory=dict)
    """How each requirement in ``resolved_ids`` was decided (``confirmed by alice``), where known."""
    pauses: int = 0
    paused: bool = False
    """Continued-as-new while paused: the new run starts paused on the same requirements."""
    outbox: list[ApprovalEvent] = Field(default_factory=list)
    notices: list[Notification] = Field(default_factory=list)
    remembered: dict[str, dict[str, str | None]] = Field(default_factory=dict)
    """Tools approved for the rest of the run: tool name -> {approval_id, resolved_by} that said so."""
    audit_seq: dict[str, int] = Field(default_factory=dict)
    turn: int = 0
    reported: int = 0
    """A team member's run: the version of its latest report to the team."""
    change_nonces: dict[str, float] = Field(default_factory=dict)
    """Nonces of signed approval changes taken (nonce -> signed at): each is taken once, across runs of the chain."""
    mcp_tools: list[McpToolSpec] | None = None
    """The MCP tools the run recorded at its first model call (``hitl.tools.mcp``)."""


class RunInput(BaseModel):
    """How a run starts (``message``) or goes on after continue-as-new (``carried``)."""

    agent_name: str
    message: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    carried: CarriedState | None = None
    audit: bool = False
    """Mirror approvals into the agent's database (set when the Agent has ``db=``)."""
    notify: bool = False
    """Send notifications to the agent's notifiers (set when the Agent has ``notifiers=``)."""
    history_event_limit: int = Field(default=10_000, ge=20)
    """Continue-as-new once the history holds this many events, at the next clean boundary."""
    search_attributes: bool = False
    """Keep hitl's search attributes current (set when they are registered in the namespace)."""
    team_run_id: str | None = None
    """A team member's run: the team run it works for."""
    audit_agent: str | None = None
    """Mirror approvals into this agent's database instead (a member without one uses its team's)."""
    history: list[dict[str, Any]] = Field(default_factory=list)
    """Earlier runs of the session, as chat messages put before ``message`` (``add_history_to_context``)."""


def member_slug(name: str) -> str:
    """How a team names a member in its members' run ids, ``<team run id>.<slug>.<n>-<call id>``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "member"


AUDIT = "hitl.mirror_approvals"
NOTIFY = "hitl.notify"


class ApprovalFields(BaseModel):
    """An approval record's fields, as the mirror writes them: the one declaration of them.

    ``ApprovalEvent`` carries them (the record as it stands after the event); the store's record
    (``hitl.store.records.Approval``) reads them back under the approval's ``id``, its times in whole
    epoch seconds; the service's bodies and the CLI's ``--json`` derive from that. Times here are
    epoch seconds as the workflow recorded them (floats). What the trail's hashes and seals cover is
    named column by column in ``hitl.store.audit``, never taken from this list.
    """

    run_id: str
    requirement_id: str
    session_id: str | None = None
    user_id: str | None = None
    agent_name: str
    team_run_id: str | None = None
    requirement_kind: str
    approval_type: str
    status: str
    context: dict[str, Any] = Field(default_factory=dict)
    arguments_digest: str
    created_at: float
    resolved_by: str | None = None
    resolved_at: float | None = None
    resolution: dict[str, Any] | None = None


class _EventHead(BaseModel):
    """Which approval an ``ApprovalEvent`` is on, its place in that approval's trail, and what happened."""

    approval_id: str
    seq: int
    kind: str
    at: float
    payload: dict[str, Any] = Field(default_factory=dict)


# Pydantic orders a model's fields from its last base to its first: the head's fields come first, then the
# record's, as this event has always been serialized into histories (tests/store/test_records.py).
class ApprovalEvent(ApprovalFields, _EventHead):
    """One event on an approval record, with the record as it stands after it.

    Built in the workflow (deterministic: ids, sequence and times come from history), written by
    the mirror activity; writing the same event twice changes nothing.
    """


MEMBER_PROGRESS = "member_progress"
TEAM_DECISION = "team_decision"
UPGRADE = "upgrade"
"""The signal that asks a paused run to move to its worker deployment's current version."""


class TeamDecision(BaseModel):
    """A decision its team run checked and applied to its own view, sent on to the member run.

    The ``team_decision`` signal: the member applies it as any decision and, since the team
    made this change itself, does not report it back (its next report carries it anyway).
    """

    decision: Decision
    team_run_id: str | None = None
    """The team run that sent it; a member refuses one from any other (unset in older histories)."""


class MemberProgress(BaseModel):
    """A member's run tells its team run about its requirements (the ``member_progress`` signal)."""

    member_run_id: str
    agent_name: str
    version: int
    """Increases with each report; a team ignores a report older than one it has."""
    requirements: list[RunRequirement] = Field(default_factory=list)
    outcome: RunOutput | None = None
    """Set once the member's run has ended (completed, error or cancelled): its answer.

    The team goes on with it at once, without waiting for the member's run to close (closing
    commits the member's tool results behind a timer, which servers fire on a 1 s grain)."""


class NotifyRequest(BaseModel):
    agent_name: str
    notification: Notification


class MirrorRequest(BaseModel):
    agent_name: str
    events: list[ApprovalEvent]


CarriedState.model_rebuild()
RunInput.model_rebuild()


def digest(arguments: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the arguments: binds an approval to exactly what was approved
    (the audit record's ``arguments_digest``, a link's, a signed decision's)."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# A team's direct decision path (workflows/direct.py): a query, two updates and what they carry.
DECISION_ROUTE = "decision_route"
TEAM_DECIDE = "team_decide"
TEAM_CONTINUE = "team_continue"
MEMBER_REPORT = "member_report"


class TeamDecisions(BaseModel):
    """The ``team_decide`` update: decisions its team checked, under the member's own requirement ids."""

    model_config = ConfigDict(extra="forbid")

    team_run_id: str
    decisions: list[Decision] = Field(default_factory=list, max_length=1000)


class MemberReport(BaseModel):
    """The ``member_report`` update: a member's report, handed to its team by the caller that decided."""

    model_config = ConfigDict(extra="forbid")

    progress: MemberProgress
    after_pause: int = Field(0, ge=0)
    """The team's pause count when the decisions were routed: the update answers at the next one, or the end."""


class DecisionRoute(BaseModel):
    """The team's answer to ``decision_route``: where the decisions go, or why they are refused."""

    member_run_id: str | None = None
    """The one member run that owns every decided requirement; None: send them to the team."""
    requirement_ids: list[str] = Field(default_factory=list)
    """Each decision's requirement under the member's own id, in the order sent."""
    after_pause: int = 0
    """The team's pause count now: ``wait_for_progress`` answers at the next one, or the end."""
    refused_type: str | None = None
    """The HitlError the team's ``continue_run`` would refuse these decisions with, and its message."""
    refused: str | None = None
