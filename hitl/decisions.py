"""Decisions on a paused run: the payloads of the ``confirm``, ``reject``, ``provide_input`` and
``provide_result`` signals, and of the ``continue_run`` update.

Any Temporal client may send them; the JSON is the model's fields, e.g.
``{"requirement_id": "req-1-call_0", "reason": "too expensive", "resolved_by": "alice"}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hitl import limits
from hitl.errors import InvalidDecisionError, PayloadTooLargeError

__all__ = ["Confirm", "Reject", "ProvideInput", "ProvideResult", "Decision", "ContinueRunRequest", "ChangeApproval",
           "refuse_unsafe"]


class _DecisionBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requirement_id: str = Field(min_length=1, max_length=1000, description="The id of the requirement being decided.")
    resolved_by: str | None = Field(default=None, max_length=256, description="Who decided, for the audit trail.")
    signature: str | None = Field(default=None, max_length=4096, description=(
        "A compact JWS by a key the run's workers trust (hitl.security.signing): required in strict mode, kept on the trail."))


class Confirm(_DecisionBase):
    """Run the tool; ``arguments`` (optional) replaces the model's arguments after validation."""

    action: Literal["confirm"] = "confirm"
    arguments: dict[str, Any] | None = None
    remember: bool = False
    """Approve this tool for the rest of the run: later calls run without asking (and are recorded)."""


class Reject(_DecisionBase):
    """Do not run the tool; the model is told it was rejected, with the reason."""

    action: Literal["reject"] = "reject"
    reason: str | None = Field(default=None, max_length=4000)


class ProvideInput(_DecisionBase):
    """Fill the fields a person must provide: a dict of field values, or one value when one field is asked."""

    action: Literal["provide_input"] = "provide_input"
    value: Any


class ProvideResult(_DecisionBase):
    """The result of a tool executed outside the agent."""

    action: Literal["provide_result"] = "provide_result"
    result: Any


Decision = Annotated[Confirm | Reject | ProvideInput | ProvideResult, Field(discriminator="action")]


class ContinueRunRequest(BaseModel):
    """The ``continue_run`` update: decisions that, with those already made, resolve the whole pause."""

    model_config = ConfigDict(extra="forbid")

    decisions: list[Decision] = Field(default_factory=list, max_length=1000)


class ChangeApproval(BaseModel):
    """The ``change_approval`` signal and update: reassign a pending approval or move its deadline.

    ``approvers`` replaces the list of who may decide; ``extend_by_seconds`` moves the deadline
    later (a requirement without one gets one from now). The run's timers follow.
    """

    model_config = ConfigDict(extra="forbid")

    requirement_id: str = Field(min_length=1, max_length=1000)
    approvers: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = Field(default=None, max_length=1000)
    extend_by_seconds: float | None = Field(default=None, gt=0, le=10 * 365 * 86400)
    changed_by: str | None = Field(default=None, max_length=256)
    signature: str | None = Field(default=None, max_length=4096)
    """A compact JWS by a trusted key (hitl.security.signing): required in strict mode."""


def refuse_too_deep(decision: BaseModel, where: str) -> None:
    """Refuse a decision whose JSON nests deeper than ``hitl.limits.MAX_JSON_DEPTH`` (checked where decisions
    enter, before anything encodes it).

    Raises:
        InvalidDecisionError: naming the depth and the limit.
    """
    n = limits.depth([getattr(decision, name) for name in type(decision).model_fields])
    if n - 1 > limits.MAX_JSON_DEPTH:
        raise InvalidDecisionError(f"{where}: the decision nests {n - 1} levels deep, over hitl's limit of "
                                   f"{limits.MAX_JSON_DEPTH} (hitl.limits.MAX_JSON_DEPTH); send flatter JSON")


def refuse_unsafe(decision: BaseModel, where: str) -> None:
    """Refuse a decision (or approval change) that is over hitl's size limit or holds text the
    audit trail cannot store (``hitl.limits``): it must never reach a run's history.

    Raises:
        PayloadTooLargeError: over ``MAX_DECISION_BYTES``.
        InvalidDecisionError: a NUL character or an unpaired surrogate, with the field that holds it.
    """
    data = decision.model_dump(mode="json")
    n = limits.json_bytes(data)
    if n > limits.MAX_DECISION_BYTES:
        raise PayloadTooLargeError(
            f"{where}: the decision is {limits.size(n)}, over hitl's limit of {limits.size(limits.MAX_DECISION_BYTES)} "
            "per decision (hitl.limits.MAX_DECISION_BYTES)")
    problem = limits.unstorable(data)
    if problem is not None:
        raise InvalidDecisionError(f"{where}: {problem}, which the audit trail cannot store")
