"""The service's request and response bodies: the OpenAPI document is built from these.

An approval's bodies (``ApprovalRecord``, ``ApprovalDetail``, ``ApprovalEventOut``) are declared in
``hitl._core.views``, derived from the store's record; the CLI prints from them too."""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hitl import ids, limits
from hitl._core.views import ApprovalDetail as ApprovalDetail
from hitl._core.views import ApprovalEventOut as ApprovalEventOut
from hitl._core.views import ApprovalRecord as ApprovalRecord
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

