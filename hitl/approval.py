"""``@approval``: mark a tool whose pauses are approval records."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from datetime import timedelta
from enum import Enum
from typing import Any, overload

from hitl.policy import ApprovalPolicy, EscalationStep
from hitl.tools import Tool, as_tool

__all__ = ["approval", "ApprovalType"]


class ApprovalType(str, Enum):
    """``required`` blocks the run until decided; ``audit`` only records the call."""

    required = "required"
    audit = "audit"


@overload
def approval(fn: Tool | Callable[..., Any], /) -> Tool: ...


@overload
def approval(
    *,
    type: ApprovalType = ApprovalType.required,  # noqa: A002
    approvers: list[str] | None = None,
    timeout: timedelta | None = None,
    on_timeout: str = "reject",
    separation_of_duties: bool = False,
    escalation: list[EscalationStep] | None = None,
    quorum: int = 1,
) -> Callable[[Tool | Callable[..., Any]], Tool]: ...


def approval(
    fn: Tool | Callable[..., Any] | None = None,
    /,
    *,
    type: ApprovalType = ApprovalType.required,  # noqa: A002
    approvers: list[str] | None = None,
    timeout: timedelta | None = None,
    on_timeout: str = "reject",
    separation_of_duties: bool = False,
    escalation: list[EscalationStep] | None = None,
    quorum: int = 1,
) -> Tool | Callable[[Tool | Callable[..., Any]], Tool]:
    """Mark a tool as needing an approval record (``@approval`` or ``@approval(type=...)``).

    Stacks with ``@tool(...)`` in either order. A ``required`` approval on a tool with no other
    human flag makes it require confirmation.

    Args:
        type: ``required`` blocks the run until decided; ``audit`` records the call only.
        approvers: User ids and ``group:NAME`` entries allowed to decide (see
            ``hitl.policy.set_group_resolver``); a decision by anyone else is refused and recorded.
        timeout: How long a pause waits for this approval, on a durable timer.
        on_timeout: ``reject`` (default: the model is told the request expired), ``approve``
            (only when said here), or ``cancel`` the run.
        separation_of_duties: Bar the run's requesting user from deciding on it.
        escalation: Steps on durable timers from when the pause began: ``remind(after=...)``,
            ``escalate(after=..., to=[...])`` (see ``hitl.policy``).
        quorum: Distinct approvers who must confirm before the tool runs; any one may reject.
    """
    policy = ApprovalPolicy.build(approvers, timeout, on_timeout, separation_of_duties, escalation, quorum)

    def wrap(f: Tool | Callable[..., Any]) -> Tool:
        t = as_tool(f)
        t.approval = ApprovalType(type)
        t.approval_policy = policy
        if t.approval is ApprovalType.required and not (
            t.requires_confirmation or t.requires_user_input or t.external_execution
        ):
            t.requires_confirmation = True
        return t

    return wrap(fn) if fn is not None else wrap


class _ApprovalModule(types.ModuleType):
    """This module, callable as the decorator it defines.

    ``hitl.approval`` names both this module (Agno's path: ``from hitl.approval import approval``)
    and the decorator ``hitl`` exports. Once the module is imported, Python binds the package's
    ``approval`` attribute to the module, so ``from hitl import approval`` would give the module
    and ``@approval`` would fail: the module calls the decorator instead.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return approval(*args, **kwargs)


sys.modules[__name__].__class__ = _ApprovalModule
