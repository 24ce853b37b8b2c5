"""Counting approvals at size: exact from the maintained counts where the filters allow, a bounded
exact count where few rows match, else PostgreSQL's estimate, flagged as one.

Migration 006 keeps ``<approvals>_counts`` (and its insert-only ``_count_deltas``) by trigger,
keyed by status, tool, agent, approval type, pause type and UTC day. Filters on those, and time
ranges (whole days from the counts, the partial days at either end counted in the table), are
answered exactly whatever the size. Other filters (run, session, user, resolver, approver...)
are counted in the table up to ``EXACT_UP_TO`` matches; past that the count is the planner's
estimate and says so (``TotalCount.estimated``), unless the caller asks for ``exact=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from psycopg import sql

from hitl.store import queries

EXACT_UP_TO = 20_000
"""Rows counted in the table before a count not answerable from the maintained counts becomes an estimate."""

COUNTED = {"tool_name", "agent_name", "approval_type", "requirement_kind"}  # columns of <approvals>_counts
_ALIASES = {"agent_id": "agent_name", "pause_type": "requirement_kind"}  # Agno's keywords for them
_TIME = {"created_at_gte", "created_at_lte", "month"}
_KEY = "status, tool_name, agent_name, approval_type, requirement_kind, day"


class TotalCount(int):
    """How many approvals match: an ``int``, as it always was, that also says whether it is exact.

    ``estimated`` is False for an exact count, True for PostgreSQL's estimate (returned when an
    exact count would read more than ``EXACT_UP_TO`` rows of the table; at least that many match).
    """

    estimated: bool

    def __new__(cls, value: int, estimated: bool = False) -> TotalCount:
        count = super().__new__(cls, value)
        count.estimated = estimated
        return count


@dataclass(frozen=True)
class CountPlan:
    """One statement that answers ``(counted, scanned)``, and how to read its row.

    ``counted`` is the sum from the maintained counts; ``scanned`` the rows counted in the table
    (at most ``limit`` when bounded). ``explain`` is the statement whose plan estimates the rows
    of the table part when the bounded count ran out.
    """

    query: sql.Composable
    params: list[Any]
    limit: int | None
    explain: tuple[sql.Composable, list[Any]]

    def total(self, row: dict[str, Any]) -> TotalCount | None:
        """The exact count, or None when the bounded count ran out (then ask ``explain``)."""
        if self.limit is not None and row["scanned"] >= self.limit:
            return None
        return TotalCount(int(row["counted"]) + int(row["scanned"]))

    def estimate(self, row: dict[str, Any], plan: Any) -> TotalCount:
        """What the counts hold plus the planner's estimate of the table part (never below what was counted there)."""
        rows = int(plan[0]["Plan"]["Plan Rows"]) if plan else 0
        return TotalCount(int(row["counted"]) + max(rows, self.limit or 0), estimated=True)


def plan(
    approvals: str, status: str | None, filters: dict[str, Any], extra: list[tuple[sql.Composable, list[Any]]] | None = None,
    *, exact: bool = False, include_deleted: bool = False, undecided_audit: bool = False,
) -> CountPlan:
    """The count of ``where(status, filters, extra)`` (which also validates every filter).

    The maintained counts leave out approvals hidden by ``delete_approval``; ``include_deleted``
    counts them too, in the table.
    """
    extra = list(extra or [])
    clause, params = queries.where(status, filters, extra, include_deleted=include_deleted,
                                    undecided_audit=undecided_audit)
    table = sql.Identifier(approvals)
    given = {_ALIASES.get(k, k): v for k, v in filters.items() if v is not None}
    if not extra and not include_deleted and set(given) <= COUNTED | _TIME:
        try:
            return _from_counts(approvals, status, filters, given, exact, undecided_audit)
        except OverflowError:  # a range at the ends of the calendar: counted in the table
            pass
    return _scan(table, clause, params, exact, sql.SQL("0"), [])


def _scan(table: sql.Identifier, clause: sql.Composable, params: list[Any], exact: bool,
          counted: sql.Composable, counted_params: list[Any]) -> CountPlan:
    """Rows counted in the table (up to EXACT_UP_TO + 1 unless ``exact``), beside ``counted``."""
    limit = None if exact else EXACT_UP_TO + 1
    explain = (sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {}").format(table) + clause, params)
    inner = sql.SQL("SELECT 1 FROM {}").format(table) + clause
    if limit is not None:
        inner += sql.SQL(" LIMIT %s")
    query = (sql.SQL("SELECT ") + counted + sql.SQL(" AS counted, (SELECT count(*) FROM (") + inner
             + sql.SQL(") AS matching) AS scanned"))
    return CountPlan(query, [*counted_params, *params, *([limit] if limit is not None else [])], limit, explain)


def _range(given: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """The created_at range of the filters, half-open: [low, high)."""
    low = queries._time(given["created_at_gte"], "created_at_gte") if "created_at_gte" in given else None
    high = None
    if "created_at_lte" in given:  # inclusive: the next microsecond is the first one out
        high = queries._time(given["created_at_lte"], "created_at_lte") + timedelta(microseconds=1)
    if "month" in given:
        year, month = (int(part) for part in str(given["month"]).split("-"))
        start = datetime(year, month, 1, tzinfo=UTC)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        low = start if low is None else max(low, start)
        high = end if high is None else min(high, end)
    return low, high


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _from_counts(approvals: str, status: str | None, filters: dict[str, Any], given: dict[str, Any], exact: bool,
                 undecided_audit: bool = False) -> CountPlan:
    """Whole days from the maintained counts; the partial days at the ends of a range from the table."""
    conditions: list[sql.Composable] = []
    values: list[Any] = []
    if not undecided_audit:
        conditions.append(sql.SQL(queries.UNDECIDED_AUDIT_LEFT_OUT))
    if status is not None:
        conditions.append(sql.SQL("status = %s"))
        values.append(status)
    for column in sorted(COUNTED & set(given)):
        conditions.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
        values.append(given[column])
    low, high = _range(given)
    edges: list[tuple[datetime, datetime]] = []  # partial days, counted in the table
    first = last = None  # whole days: [first, last)
    if low is not None:
        first = low.astimezone(UTC).date()
        if _midnight(first) != low:
            first += timedelta(days=1)
    if high is not None:
        last = high.astimezone(UTC).date()
    # (first is None exactly when low is, last when high is: each pair is tested for mypy's sake)
    if low is not None and high is not None and first is not None and last is not None and first > last:  # within one day
        edges.append((low, high))
        conditions.append(sql.SQL("FALSE"))
    else:
        if low is not None and first is not None:
            conditions.append(sql.SQL("day >= %s"))
            values.append(first)
            if _midnight(first) > low:
                edges.append((low, _midnight(first)))
        if high is not None and last is not None:
            conditions.append(sql.SQL("day < %s"))
            values.append(last)
            if high > _midnight(last):
                edges.append((_midnight(last), high))
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
    counted = sql.SQL("(SELECT coalesce(sum(n), 0) FROM (SELECT n FROM {c}{w} UNION ALL SELECT n FROM {d}{w}) AS counts)").format(
        c=sql.Identifier(f"{approvals}_counts"), d=sql.Identifier(f"{approvals}_count_deltas"), w=where)
    if not edges:
        return CountPlan(sql.SQL("SELECT ") + counted + sql.SQL(" AS counted, 0 AS scanned"), values * 2, None,
                         (sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1"), []))
    plain = {k: v for k, v in filters.items() if k not in _TIME}
    spans = sql.SQL(" OR ").join(sql.SQL("(created_at >= %s AND created_at < %s)") for _ in edges)
    clause, params = queries.where(status, plain, [(sql.SQL("(") + spans + sql.SQL(")"), [v for e in edges for v in e])],
                                    undecided_audit=undecided_audit)
    return _scan(sql.Identifier(approvals), clause, params, exact, counted, values * 2)


def compaction(approvals: str) -> list[sql.Composable]:
    """Fold the deltas into the counts (one row per key), and drop keys that count nothing.

    Safe beside writers (a delta committed after the DELETE's snapshot stays for the next time)
    and beside another compaction (a delta is deleted, hence added, once).
    """
    names = {"c": sql.Identifier(f"{approvals}_counts"), "d": sql.Identifier(f"{approvals}_count_deltas")}
    return [
        sql.SQL("WITH moved AS (DELETE FROM {d} RETURNING " + _KEY + ", n)"
                " INSERT INTO {c} AS c (" + _KEY + ", n) SELECT " + _KEY + ", sum(n) FROM moved GROUP BY " + _KEY +
                " ON CONFLICT (" + _KEY + ") DO UPDATE SET n = c.n + excluded.n").format(**names),
        sql.SQL("DELETE FROM {c} WHERE n = 0").format(**names),
    ]


_COMPACTION_LOCK = 0x68636E74  # 'hcnt', with the table's hash: one compaction per table at a time
COMPACT_EVERY = 200
"""Mirror writes a process makes between compactions; deltas wait for it, counts stay exact meanwhile."""


async def acompact(conn: Any, approvals: str) -> bool:
    """Compact now on ``conn`` (autocommit) unless another session is at it; whether this one did."""
    async with conn.transaction():
        cursor = await conn.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s)) AS got", (_COMPACTION_LOCK, approvals))
        row = await cursor.fetchone()
        if not (row["got"] if isinstance(row, dict) else row[0]):
            return False
        for statement in compaction(approvals):
            await conn.execute(statement)
    return True


def compact(conn: Any, approvals: str) -> bool:
    """:func:`acompact` on a sync connection."""
    with conn.transaction():
        row = conn.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s)) AS got", (_COMPACTION_LOCK, approvals)).fetchone()
        if not (row["got"] if isinstance(row, dict) else row[0]):
            return False
        for statement in compaction(approvals):
            conn.execute(statement)
    return True
