"""Identifiers that cannot change meaning on their way through a URL.

Run, session and requirement ids travel in paths: ``/runs/<run_id>``,
``/approvals/<run_id>/<requirement_id>/resolve``, the inbox's ``/inbox/approvals/...``. Browsers'
``fetch``, httpx and most proxies resolve ``.`` and ``..`` segments before a request leaves, and
``encodeURIComponent`` does not escape dots: a run started as ``x/../<victim>`` would show an
approval whose Approve button decides the victim's. So every id hitl takes is one path segment
that no client or proxy rewrites:

- letters, digits and ``. _ : @ -`` only (no ``/``, no ``%``, no spaces or control characters);
- a letter or digit first, so it is never ``.`` or ``..`` and never hidden as a dot-file;
- at most :data:`MAX_SEGMENT_CHARS` characters (a run started through hitl: ``MAX_ID_CHARS``).

An approval id is exactly two such segments, ``<run_id>/<requirement_id>``; a team shows a
member's requirement to its team as ``<member_run_id>/<requirement_id>``, so a requirement id in a
decision is one segment or two. The ids hitl makes itself (``run-<hex>``, ``req-<turn>-<call id>``,
``<team run>.<member>.<n>-<call id>``) always fit. The rule is refused at every entrance (the Python
API, the REST API, the CLI, updates) with an ``InvalidInputError`` that names the field, and every
client builds URLs from checked segments only.
"""

from __future__ import annotations

import re

from hitl import limits
from hitl.errors import InvalidInputError

__all__ = ["SEGMENT", "MAX_SEGMENT_CHARS", "RULE", "is_segment", "check_id", "check_requirement_id", "split_approval_id",
           "SEGMENT_PATTERN", "APPROVAL_ID_PATTERN", "REQUIREMENT_ID_PATTERN"]

MAX_SEGMENT_CHARS = 1000
"""The longest id segment hitl takes (Temporal's own limit for a workflow id); a team member's run id,
which carries its team's, may be longer than :data:`hitl.limits.MAX_ID_CHARS`."""
SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._:@-]*"
SEGMENT_PATTERN = f"^{SEGMENT}$"
"""One id: what ``run_id`` and ``session_id`` must match (JSON Schema and OpenAPI ``pattern``)."""
APPROVAL_ID_PATTERN = f"^{SEGMENT}/{SEGMENT}$"
"""An approval id, ``<run_id>/<requirement_id>``."""
REQUIREMENT_ID_PATTERN = f"^{SEGMENT}(/{SEGMENT})?$"
"""A requirement id in a decision: its own, or a team member's ``<member_run_id>/<requirement_id>``."""
RULE = "letters, digits and . _ : @ - only, starting with a letter or digit"
_SEGMENT = re.compile(SEGMENT)


def is_segment(value: object, max_chars: int = MAX_SEGMENT_CHARS) -> bool:
    """Whether ``value`` is one id segment no URL can reinterpret."""
    return isinstance(value, str) and 0 < len(value) <= max_chars and _SEGMENT.fullmatch(value) is not None


def _shown(value: str) -> str:
    return repr(value[:80]) + ("..." if len(value) > 80 else "")


def check_id(value: str, field: str, *, max_chars: int = limits.MAX_ID_CHARS, where: str = "") -> str:
    """``value`` if it is a single safe id segment of at most ``max_chars`` characters.

    Raises:
        InvalidInputError: naming ``field`` (and ``where``), the value and the rule.
    """
    if is_segment(value, max_chars):
        return value
    prefix = f"{where}: " if where else ""
    if not isinstance(value, str) or not value or len(value) > max_chars:
        raise InvalidInputError(f"{prefix}{field} {_shown(str(value))}: give 1 to {max_chars} characters ({RULE})")
    raise InvalidInputError(f"{prefix}{field} {_shown(value)}: an id is one path segment, {RULE}; "
                            "'/', '%', spaces and dot segments are refused so that no URL can change its meaning")


def check_requirement_id(value: str, where: str = "") -> str:
    """A requirement id as a decision names it: one segment, or a team member's ``<member_run_id>/<requirement_id>``.

    Raises:
        InvalidInputError: naming the requirement id and the rule.
    """
    parts = value.split("/") if isinstance(value, str) else [value]
    if len(parts) <= 2 and all(is_segment(p) for p in parts):
        return value
    prefix = f"{where}: " if where else ""
    raise InvalidInputError(f"{prefix}requirement_id {_shown(str(value))}: a requirement id is one id, or a team member's "
                            f"<member_run_id>/<requirement_id>, each {RULE}")


def split_approval_id(approval_id: str) -> tuple[str, str]:
    """``(run_id, requirement_id)`` of an approval id, ``<run_id>/<requirement_id>``, each one safe segment.

    Raises:
        InvalidInputError: anything else, naming the approval id and the rule.
    """
    parts = approval_id.split("/") if isinstance(approval_id, str) else []
    if len(parts) == 2 and all(is_segment(p) for p in parts):
        return parts[0], parts[1]
    raise InvalidInputError(f"approval id {_shown(str(approval_id))}: an approval id is <run_id>/<requirement_id>, "
                            f"each {RULE}")
