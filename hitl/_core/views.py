"""Approvals as a caller is shown them: the bodies of the service's ``/approvals`` routes (its OpenAPI
document is built from these), and what the CLI prints, from the service's JSON or from PostgreSQL.

Each derives from the store's record (``hitl.store.records.Approval``, whose fields are declared once, in
``hitl._wire.ApprovalFields``); ``hitl._core.approvals`` fills them. No Temporal or SQL here: the CLI imports
this module to print what a service answered.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field

from hitl.store.records import Approval, TrailEvent


class ApprovalRecord(Approval):
    """An approval record, as ``PostgresDb.get_approval`` returns it (times in epoch seconds)."""

    escalation_level: int = Field(default=0, description="How many escalation steps have fired.")
    may_decide: bool = Field(default=False, description="Whether the caller may decide it now, as far as the service "
                             "can tell (the run has the last word).")

    @classmethod
    def of(cls, record: Approval, **shown: Any) -> Self:
        """``record``'s fields (a ``StoredApproval``'s own columns left out) with what this view adds."""
        return cls.model_validate({**{name: getattr(record, name) for name in Approval.model_fields}, **shown})


class ApprovalEventOut(TrailEvent):
    pass  # no docstring: the OpenAPI document has never described it


class ApprovalDetail(ApprovalRecord):
    """An approval with what a decider needs: its run's status, the answer it accepts, its policy and history."""

    run_status: str | None = Field(description="The run's status now; None when Temporal could not be asked.")
    run_status_error: str | None = None
    answer_schema: dict[str, Any] = Field(description="JSON Schema of the resolve body this approval accepts.")
    policy: dict[str, Any] | None = None
    deadline: float | None = None
    approvals: list[str] = Field(default_factory=list, description="Who has confirmed toward a quorum.")
    events: list[ApprovalEventOut]

