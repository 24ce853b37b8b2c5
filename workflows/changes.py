"""Reassigning a pending approval or moving its deadline: the ``change_approval`` update and signal.

A mixin of the run's handlers; what it needs of the run is the ``_Run`` protocol. (Temporal reads
a handler's parameters from its type hints: a handler's own ``self`` stays unannotated.)
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import pydantic
from temporalio import workflow
from temporalio.common import RawValue

import hitl.workflows.refusals as refusals
from hitl import ids, limits
from hitl.decisions import ChangeApproval, refuse_unsafe
from hitl.errors import DecisionNotAllowedError, HitlError, InvalidDecisionError, RunEndedError
from hitl.policy import ApprovalPolicy
from hitl.run import RunOutput, RunRequirement, RunStatus
from hitl.workflows.payloads import refusal
from hitl.workflows.signatures import Signatures
from hitl.workflows.team import MemberRuns


class _Run(Protocol):
    _run_id: str
    _status: RunStatus
    _policy_changes: int
    _members: MemberRuns
    _signatures: Signatures
    _refusals: refusals.Refusals

    def _find(self, rid: str) -> RunRequirement: ...
    def _record(self, req: RunRequirement, kind: str, **details: Any) -> None: ...
    def _output(self) -> RunOutput: ...
    def _decode(self, raw: RawValue, shape: Any, what: str, max_bytes: int = limits.MAX_REQUEST_BYTES) -> Any: ...
    def _check_change(self, change: ChangeApproval) -> tuple[RunRequirement, ApprovalPolicy]: ...
    def _change(self, change: ChangeApproval) -> None: ...


class ApprovalChanges:
    def _check_change(self: _Run, change: ChangeApproval) -> tuple[RunRequirement, ApprovalPolicy]:
        """The requirement a change names and its policy after the change, or why it is refused."""
        if self._status.is_final:
            raise RunEndedError(f"run {self._run_id} has ended ({self._status.value})")
        req = self._find(change.requirement_id)
        refuse_unsafe(change, f"run {self._run_id}, requirement {req.id!r}: change_approval")
        policy = req.policy or ApprovalPolicy()
        if change.approvers is not None:
            try:
                policy = ApprovalPolicy.model_validate({**policy.model_dump(), "approvers": change.approvers})
            except pydantic.ValidationError as exc:
                raise InvalidDecisionError(f"run {self._run_id}, requirement {req.id!r}: approvers refused: {exc}") from None
        return req, policy

    def _change(self: _Run, change: ChangeApproval) -> None:
        req, policy = self._check_change(change)
        where = f"run {self._run_id}, requirement {req.id!r} ({req.tool_execution.tool_name})"
        try:
            self._signatures.take_change(where, req, change, workflow.now().timestamp())
        except DecisionNotAllowedError as exc:
            # Kept on the approval's history (a member records its own), a few per decider.
            if req.member_run_id is None and self._refusals.keep(req.id, change.changed_by):
                self._record(req, "refused", payload={
                    "action": "change_approval", "changed_by": limits.storable(change.changed_by or "")[:256] or None,
                    "reason": limits.storable(str(exc))[:2000], **({"signed": True} if change.signature else {})})
            raise
        if req.member_run_id is not None:
            self._members.forward(req, "change_approval", change)  # the member owns it, and reports back
            return
        details: dict[str, Any] = {"changed_by": change.changed_by}
        if change.signature is not None:
            details["signature"] = change.signature
        if change.approvers is not None:
            details["approvers"] = change.approvers
        if change.extend_by_seconds is not None:
            base = req.deadline if req.deadline is not None else workflow.now().timestamp()
            req.deadline = base + change.extend_by_seconds
            details["deadline"] = req.deadline
        req.policy = policy
        self._policy_changes += 1
        self._record(req, "changed", payload=details)

    @workflow.update(name="change_approval")
    def change_approval(self, raw: RawValue) -> RunOutput:
        """Reassign a pending approval or extend its deadline; the timers follow."""
        try:
            run = cast(_Run, self)
            run._change(run._decode(raw, ChangeApproval, "change_approval"))
        except HitlError as exc:
            raise refusal(exc) from None
        return cast(_Run, self)._output()

    @change_approval.validator
    def _validate_change_approval(self, raw: RawValue) -> None:
        try:
            run = cast(_Run, self)
            change = run._decode(raw, ChangeApproval, "change_approval")
            ids.check_requirement_id(change.requirement_id, f"run {run._run_id}")  # validators never replay: no patch
            req, _ = run._check_change(change)
            run._signatures.check_change(f"run {run._run_id}, requirement {req.id!r}", req, change,
                                         workflow.now().timestamp())
        except DecisionNotAllowedError as exc:
            if not run._refusals.spent(req.id, change.changed_by):
                return  # accepted, so that the handler records the refused attempt
            raise refusal(DecisionNotAllowedError(
                f"{exc} ({refusals.KEPT} refused attempts by {change.changed_by or 'an unnamed caller'} are already on "
                "this approval's history; this one is refused without being recorded)")) from None
        except HitlError as exc:
            raise refusal(exc) from None

    @workflow.signal(name="change_approval")
    def change_approval_signal(self, raw: RawValue) -> None:
        try:
            run = cast(_Run, self)
            run._change(run._decode(raw, ChangeApproval, "change_approval"))
        except HitlError as exc:
            workflow.logger.warning("approval change refused: %s", exc)
