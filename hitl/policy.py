"""Who may decide an approval, and what happens when nobody does in time."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hitl.identity import reserved_prefix

__all__ = ["ApprovalRule", "ApprovalPolicy", "EscalationStep", "remind", "escalate", "set_group_resolver", "groups_of", "SYSTEM_TIMEOUT"]

SYSTEM_TIMEOUT = "system:timeout"
"""``resolved_by`` of decisions the deadline made."""

GroupResolver = Callable[[str], Iterable[str]]
_resolver: GroupResolver | None = None


class EscalationStep(BaseModel):
    """One step on the approval's clock, measured from when the pause began.

    ``remind`` notifies the current approvers again; ``escalate`` adds ``to`` to the approvers
    (or replaces them when ``replace``) and notifies them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["remind", "escalate"]
    after_seconds: float = Field(gt=0)
    to: list[str] = Field(default_factory=list)
    replace: bool = False


def remind(after: timedelta) -> EscalationStep:
    """Notify the current approvers again ``after`` the pause began."""
    return EscalationStep(action="remind", after_seconds=after.total_seconds())


def escalate(after: timedelta, to: list[str], *, replace: bool = False) -> EscalationStep:
    """Add ``to`` to the approvers (or replace them) ``after`` the pause began, and notify them."""
    if not to:
        raise ValueError("escalate() needs someone to escalate to")
    return EscalationStep(action="escalate", after_seconds=after.total_seconds(), to=list(to), replace=replace)


class ApprovalPolicy(BaseModel):
    """Serialisable policy of an ``@approval`` tool; shown on its requirements and audit records.

    Args:
        approvers: User ids and ``group:NAME`` entries allowed to decide; empty means anyone.
        timeout_seconds: How long a pause may wait for this approval; None waits forever.
        on_timeout: At the deadline: ``reject`` (the model is told the request expired),
            ``approve`` (only when set explicitly), or ``cancel`` the run.
        separation_of_duties: True bars the run's own requesting user (``user_id``) from deciding.
        escalation: Reminder and escalation steps, from when the pause began.
        quorum: How many distinct approvers must confirm before the tool runs; any one may reject.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    approvers: list[str] = Field(default_factory=list)
    timeout_seconds: float | None = Field(default=None, gt=0)
    on_timeout: Literal["reject", "approve", "cancel"] = "reject"
    separation_of_duties: bool = False
    escalation: list[EscalationStep] = Field(default_factory=list)
    quorum: int = Field(default=1, ge=1, le=100)

    @field_validator("approvers")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not entry or entry != entry.strip() or entry == "group:":
                raise ValueError(f"approver {entry!r} must be a user id or 'group:NAME'")
        return value

    @classmethod
    def build(
        cls,
        approvers: list[str] | None,
        timeout: timedelta | None,
        on_timeout: str,
        separation_of_duties: bool,
        escalation: list[EscalationStep] | None = None,
        quorum: int = 1,
    ) -> ApprovalPolicy:
        return cls(
            quorum=quorum,
            escalation=sorted(escalation or [], key=lambda step: step.after_seconds),
            approvers=list(approvers or []),
            timeout_seconds=timeout.total_seconds() if timeout is not None else None,
            on_timeout=on_timeout,  # type: ignore[arg-type]  # the caller's str: validated here, naming the choices
            separation_of_duties=separation_of_duties,
        )


class ApprovalRule:
    """An Agent-level gate: calls of tools that carry no decorator can still need an approval.

    Args:
        tools: Tool names the rule covers; None covers every tool.
        when: A predicate over a call's arguments; None means always.
        policy: The approval policy of the calls it gates (approvers, timeout, ...).

    Example: ``Agent(..., approval_rules=[ApprovalRule(tools=["transfer"], when=lambda a: a["amount"] > 1000)])``
    """

    def __init__(
        self,
        tools: list[str] | None = None,
        when: Callable[[dict[str, object]], bool] | None = None,
        policy: ApprovalPolicy | None = None,
    ) -> None:
        self.tools = set(tools) if tools is not None else None
        self.when = when
        self.policy = policy

    def __repr__(self) -> str:
        return f"ApprovalRule(tools={sorted(self.tools) if self.tools is not None else 'all'})"

    def gates(self, tool_name: str, arguments: dict[str, object]) -> bool:
        if self.tools is not None and tool_name not in self.tools:
            return False
        try:
            return self.when is None or bool(self.when(arguments))
        except Exception:  # a broken rule must not let a call through
            return True


def set_group_resolver(resolver: GroupResolver | None) -> None:
    """Register how a user id maps to group names (for ``group:NAME`` approvers), in every worker.

    The resolver runs inside workflow code when a decision is checked: it must be a pure lookup
    (a dict, a static directory), not a network call.
    """
    global _resolver
    _resolver = resolver


def groups_of(user: str) -> set[str]:
    return set(_resolver(user)) if _resolver is not None else set()


def may_decide(policy: ApprovalPolicy, user: str | None, requester: str | None, groups: Iterable[str] = (), *,
               names_as_written: bool = False) -> str | None:
    """None when ``user`` may decide under ``policy``, else why not.

    ``groups``: groups a signed decision proves the user is in, besides the resolver's.
    ``names_as_written``: a user named ``group:x`` matches the entry ``group:x`` (how runs older than the
    generation were checked, and are checked again on replay); otherwise only membership satisfies it.
    """
    if policy.approvers and user is None:
        return f"only {policy.approvers} may decide: the decision must say who made it (resolved_by)"
    if policy.separation_of_duties and user is not None and user == requester:
        return f"{user} requested this run and may not decide on it (separation of duties)"
    if not policy.approvers or (user in policy.approvers and (names_as_written or reserved_prefix(user or "") is None)):
        return None  # a name like group:finance is a group's members, which only membership satisfies (below)
    groups = groups_of(user or "") | set(groups)
    if any(a.startswith("group:") and a.removeprefix("group:") in groups for a in policy.approvers):
        return None
    return f"{user} is not among the approvers {policy.approvers}"
