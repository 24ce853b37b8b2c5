"""Reading approval records: filters become parameters, never SQL text."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from psycopg import sql

from hitl import limits
from hitl.errors import InvalidInputError

SORTABLE = {"created_at", "resolved_at", "status", "agent_name", "run_id", "resolved_by", "tool_name"}
COLUMNS = (
    "id, run_id, requirement_id, session_id, user_id, agent_name, requirement_kind, approval_type, status,"
    " context, arguments_digest, created_at, resolved_by, resolved_at, resolution, team_run_id,"
    " team_name, updated_at, deleted_at"
)
# Agno's keyword filters and the column each stands for.
AGNO_KEYWORDS = {"run_id": "run_id", "user_id": "user_id", "approval_type": "approval_type",
                 "pause_type": "requirement_kind", "agent_id": "agent_name", "session_id": "session_id",
                 "team_id": "team_name"}
NOTHING_HERE = ("workflow_id", "schedule_id")
"""Agno's keywords for what hitl has none of (workflows, schedules): accepted, and they match nothing."""
_TEAM = "(team_run_id IS NOT NULL OR team_name IS NOT NULL)"
FILTERS = ("run_id, team_run_id, tool_name, agent_name, resolved_by, created_at_gte, created_at_lte, month, user_id, "
           "approval_type, pause_type, agent_id, session_id, source_type, team_id, workflow_id, schedule_id")


def _time(value: Any, field: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidInputError(f"filter {field}={value!r}: out of range for a time (epoch seconds)") from None
    if isinstance(value, str):
        try:
            if "\x00" in value:
                raise ValueError
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInputError(f"filter {field}={value!r}: expected epoch seconds or an ISO date") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise InvalidInputError(f"filter {field}={value!r}: expected epoch seconds or an ISO date")


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"filter {key}={value!r}: expected a string, got {type(value).__name__}")
    if (problem := limits.unstorable(value, key)) is not None or len(value) > 10_000:
        raise InvalidInputError(f"filter {problem or key + ': too long'}")
    return value


UNDECIDED_AUDIT_LEFT_OUT = "NOT (approval_type = 'audit' AND status = 'pending')"
"""An audit approval is a record of what was decided (Agno writes it only once decided): one still
waiting is left out of the Python API's listings and counts unless asked for (``undecided_audit``);
the trail has its events all along, and the service's inbox lists it, so it can be decided."""


def where(
    status: str | None, filters: dict[str, Any], extra: Iterable[tuple[sql.Composable, list[Any]]] = (),
    *, include_deleted: bool = False, undecided_audit: bool = False,
) -> tuple[sql.Composable, list[Any]]:
    """A WHERE clause and its parameters for the supported filters (and ``extra`` conditions); anything else is refused.

    Approvals hidden by ``delete_approval`` (a tombstone) are left out unless ``include_deleted``;
    audit approvals still waiting, unless ``undecided_audit`` (:data:`UNDECIDED_AUDIT_LEFT_OUT`).
    """
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    if not include_deleted:
        clauses.append(sql.SQL("deleted_at IS NULL"))
    if not undecided_audit:
        clauses.append(sql.SQL(UNDECIDED_AUDIT_LEFT_OUT))
    if status is not None:
        clauses.append(sql.SQL("status = %s"))
        params.append(status)
    for key, value in filters.items():
        if value is None:
            continue
        if key in AGNO_KEYWORDS or key in ("agent_name", "resolved_by", "requirement_kind", "tool_name", "team_run_id"):
            clauses.append(sql.SQL("{} = %s").format(sql.Identifier(AGNO_KEYWORDS.get(key, key))))
            params.append(_text(key, value))
        elif key == "source_type":
            wanted = _text(key, value)
            clauses.append(sql.SQL(_TEAM if wanted == "team" else "NOT " + _TEAM if wanted == "agent" else "FALSE"))
        elif key in NOTHING_HERE:
            _text(key, value)
            clauses.append(sql.SQL("FALSE"))
        elif key == "created_at_gte":
            clauses.append(sql.SQL("created_at >= %s"))
            params.append(_time(value, key))
        elif key == "created_at_lte":
            clauses.append(sql.SQL("created_at <= %s"))
            params.append(_time(value, key))
        elif key == "month":
            try:
                year, month = (int(part) for part in str(value).split("-"))
                start = datetime(year, month, 1, tzinfo=UTC)
                end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
            except (ValueError, OverflowError):
                raise InvalidInputError(f"filter month={value!r}: expected 'YYYY-MM'") from None
            clauses.append(sql.SQL("created_at >= %s AND created_at < %s"))
            params.extend([start, end])
        else:
            raise InvalidInputError(f"unknown approval filter {key!r}; use one of {FILTERS}")
    for condition, values in extra:
        clauses.append(condition)
        params.extend(values)
    if not clauses:
        return sql.SQL(""), params
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses), params


def order(sort_by: str, sort_order: str) -> sql.Composable:
    if sort_by not in SORTABLE:
        raise InvalidInputError(f"sort_by={sort_by!r}: sortable columns are {sorted(SORTABLE)}")
    if sort_order.lower() not in ("asc", "desc"):
        raise InvalidInputError(f"sort_order={sort_order!r}: use 'asc' or 'desc'")
    return sql.SQL(" ORDER BY {} {}, id").format(sql.Identifier(sort_by), sql.SQL(sort_order.upper()))


def approver_among(names: list[str]) -> tuple[sql.Composable, list[Any]]:
    """Approvals ``names`` may decide: those without approvers, and those whose approvers include one of them."""
    return (sql.SQL("(coalesce(jsonb_array_length(context -> 'policy' -> 'approvers'), 0) = 0"
                    " OR (context -> 'policy' -> 'approvers') ?| %s::text[])"), [names])


# Sort keys of the keyset (cursor) listing: an expression, and how a row's value is read back.
_DEADLINE = sql.SQL("coalesce((context ->> 'deadline')::float8, 'Infinity'::float8)")
KEYSET = {"created_at": sql.Identifier("created_at"), "deadline": _DEADLINE}


def keyset(sort_by: str, sort_order: str, after: tuple[Any, str] | None) -> tuple[sql.Composable, sql.Composable, list[Any]]:
    """(a condition for rows after the cursor, the ORDER BY, its parameters) of a keyset page."""
    if sort_by not in KEYSET:
        raise InvalidInputError(f"sort_by={sort_by!r}: a cursor pages by {sorted(KEYSET)}")
    if sort_order.lower() not in ("asc", "desc"):
        raise InvalidInputError(f"sort_order={sort_order!r}: use 'asc' or 'desc'")
    key = KEYSET[sort_by]
    direction = sql.SQL(sort_order.upper())
    order = sql.SQL(" ORDER BY {k} {d}, id {d}").format(k=key, d=direction)
    if after is None:
        return sql.SQL("TRUE"), order, []
    op = sql.SQL(">" if sort_order.lower() == "asc" else "<")
    value = _time(after[0], "cursor") if sort_by == "created_at" else float(after[0])
    return sql.SQL("({k}, id) {op} (%s, %s)").format(k=key, op=op), order, [value, after[1]]


def keyset_value(sort_by: str, row: dict[str, Any]) -> Any:
    """The cursor value of a row as selected (its time to the microsecond, not the record's whole seconds)."""
    if sort_by == "created_at":
        return row["created_at"].isoformat()
    deadline = (row.get("context") or {}).get("deadline")
    return float(deadline) if deadline is not None else float("inf")
