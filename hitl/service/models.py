"""The service's request and response bodies: the OpenAPI document is built from these."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hitl import ids, limits
from hitl._timestamps import IsoTime
from hitl.decisions import Decision
from hitl.errors import InvalidInputError
from hitl.identity import check_approver_name
from hitl.run import RunSummary

T = TypeVar("T")


class PageMeta(BaseModel):
    """AgentOS's page meta, plus a cursor: pass ``next_cursor`` as ``cursor`` for the next page."""

    page: int
    limit: int
    total_count: int
    total_pages: int
    next_cursor: str | None = None
    total_count_estimated: bool = Field(
        default=False, description="True when total_count is PostgreSQL's estimate, not an exact count: the filters "
        "need more rows counted than hitl counts per request (see the README's audit section).")


class Page(BaseModel, Generic[T]):
    data: list[T]
    meta: PageMeta


class ApprovalRecord(BaseModel):
    """An approval record, as ``PostgresDb.get_approval`` returns it (times in epoch seconds)."""

    id: str
    run_id: str
    requirement_id: str
    session_id: str | None = None
    user_id: str | None = None
    agent_name: str
    team_run_id: str | None = None
    requirement_kind: str
    approval_type: str
    status: str
    context: dict[str, Any]
    arguments_digest: str
    created_at: int
    resolved_by: str | None = None
    resolved_at: int | None = None
    resolution: dict[str, Any] | None = None
    escalation_level: int = Field(default=0, description="How many escalation steps have fired.")
    may_decide: bool = Field(default=False, description="Whether the caller may decide it now, as far as the service "
                             "can tell (the run has the last word).")


class ApprovalEventOut(BaseModel):
    seq: int
    kind: str
    payload: dict[str, Any]
    at: int
    prev_hash: str
    hash: str


class ApprovalDetail(ApprovalRecord):
    """An approval with what a decider needs: its run's status, the answer it accepts, its policy and history."""

    run_status: str | None = Field(description="The run's status now; None when Temporal could not be asked.")
    run_status_error: str | None = None
    answer_schema: dict[str, Any] = Field(description="JSON Schema of the resolve body this approval accepts.")
    policy: dict[str, Any] | None = None
    deadline: float | None = None
    approvals: list[str] = Field(default_factory=list, description="Who has confirmed toward a quorum.")
    events: list[ApprovalEventOut]


class ApprovalStatus(BaseModel):
    id: str
    status: str
    resolved_by: str | None = None
    resolved_at: int | None = None


class Count(BaseModel):
    count: int
    estimated: bool = Field(default=False, description="True when count is PostgreSQL's estimate, not an exact count "
                            "(present only then).")


ApproverName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^\S(.*\S)?$",
                                     description="A principal's name or group:NAME, no surrounding spaces.")]


class ChangeRequest(BaseModel):
    """Reassign a pending approval or move its deadline; recorded as changed by the caller."""

    model_config = ConfigDict(extra="forbid")

    approvers: list[ApproverName] | None = Field(default=None, max_length=1000, description="User ids and group:NAME "
                                                 "entries; system: and policy: names are hitl's own and refused.")
    extend_by_seconds: float | None = Field(default=None, ge=1, le=10 * 365 * 86400,
                                            description="Move the deadline this much later (at least a second).")

    @field_validator("approvers")
    @classmethod
    def _no_reserved_approvers(cls, value: list[str] | None) -> list[str] | None:
        for entry in value or []:
            try:
                check_approver_name(entry, "approvers")
            except InvalidInputError as exc:
                raise ValueError(str(exc)) from None  # pydantic's 422, naming the field
        return value


class StartRun(BaseModel):
    """Start a run of an agent this service serves; the run's ``user_id`` is the caller."""

    model_config = ConfigDict(extra="forbid")

    agent: str = Field(min_length=1, max_length=900)
    message: str
    run_id: str | None = Field(default=None, min_length=1, max_length=limits.MAX_ID_CHARS, pattern=ids.SEGMENT_PATTERN,
                               description=f"The run's id (default: a new one): {ids.RULE}.")
    session_id: str | None = Field(default=None, min_length=1, max_length=limits.MAX_ID_CHARS, pattern=ids.SEGMENT_PATTERN,
                                   description=f"{ids.RULE}.")
    user_id: str | None = Field(default=None, max_length=256, description="Optional; if given, the caller's own identity.")


class ContinueRun(BaseModel):
    """Decisions that resolve a run's pause; each is made as the caller."""

    model_config = ConfigDict(extra="forbid")

    decisions: list[Decision] = Field(max_length=1000)


class CancelRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=4000)


class RunPage(BaseModel):
    data: list[RunSummary]
    meta: dict[str, int]


class RunFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["running", "paused", "completed", "cancelled", "error"] | None = None
    tool: str | None = Field(default=None, max_length=1000, description="Only runs waiting on this tool.")
    agent: str | None = Field(default=None, max_length=1000)
    team_run_id: str | None = Field(default=None, max_length=1000)
    deadline_before: IsoTime | None = Field(default=None, description="Only runs with an approval due before this.")
    limit: int = Field(default=100, ge=1, le=10_000)

