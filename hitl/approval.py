"""``@approval``: mark a tool whose pauses are approval records."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, overload

from hitl.tools import Tool, as_tool

__all__ = ["approval", "ApprovalType"]


class ApprovalType(str, Enum):
    """``required`` blocks the run until decided; ``audit`` only records the call."""

    required = "required"
    audit = "audit"


@overload
def approval(fn: Tool | Callable[..., Any], /) -> Tool: ...


@overload
def approval(*, type: ApprovalType = ApprovalType.required) -> Callable[[Tool | Callable[..., Any]], Tool]: ...


def approval(
    fn: Tool | Callable[..., Any] | None = None, /, *, type: ApprovalType = ApprovalType.required  # noqa: A002
) -> Tool | Callable[[Tool | Callable[..., Any]], Tool]:
    """Mark a tool as needing an approval record (``@approval`` or ``@approval(type=...)``).

    Stacks with ``@tool(...)`` in either order. A ``required`` approval on a tool with no other
    human flag makes it require confirmation.
    """

    def wrap(f: Tool | Callable[..., Any]) -> Tool:
        t = as_tool(f)
        t.approval = ApprovalType(type)
        if t.approval is ApprovalType.required and not (
            t.requires_confirmation or t.requires_user_input or t.external_execution
        ):
            t.requires_confirmation = True
        return t

    return wrap(fn) if fn is not None else wrap
