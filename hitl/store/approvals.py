"""Approval records and their trail, as the facade (``PostgresDb``) and the client core read them.

The callers keep the rules (who may see what, how a page is cut, what a refusal is logged as); the
statements are here. A record is a :class:`hitl.store.records.StoredApproval`, an event of its trail a
:class:`hitl.store.records.TrailEvent`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, NamedTuple

from psycopg import sql

from hitl.store import counts, queries
from hitl.store.counts import TotalCount
from hitl.store.records import Listed, StoredApproval, TrailEvent, event_from_row, from_row

if TYPE_CHECKING:
    from hitl.store.database import Database

Condition = tuple[sql.Composable, list[Any]]
"""A condition of a listing and its parameters (``queries.approver_among``, ``queries.keyset``)."""


def _select(db: Database, include_deleted: bool) -> sql.Composable:
    return sql.SQL("SELECT " + queries.COLUMNS + " FROM {} WHERE id = %s"
                   + ("" if include_deleted else " AND deleted_at IS NULL")).format(db.table())


def record(db: Database, approval_id: str, *, include_deleted: bool = False) -> StoredApproval | None:
    """One approval's record, or None (also one hidden by ``delete_approval``, unless ``include_deleted``)."""
    rows = db.query(_select(db, include_deleted), [approval_id])
    return from_row(rows[0]) if rows else None


async def arecord(db: Database, approval_id: str, *, include_deleted: bool = True) -> StoredApproval | None:
    """:func:`record` on the async pool; hidden approvals included unless asked (the service's reads)."""
    rows = await db.aquery(_select(db, include_deleted), [approval_id])
    return from_row(rows[0]) if rows else None


def records(db: Database, status: str | None, filters: dict[str, Any], *, sort_by: str, sort_order: str, limit: int,
            offset: int, include_deleted: bool = False, undecided_audit: bool = False) -> list[StoredApproval]:
    """One page of records matching ``status`` and ``filters`` (``queries.where``), in ``sort_by`` order."""
    clause, params = queries.where(status, filters, include_deleted=include_deleted, undecided_audit=undecided_audit)
    rows = db.query(
        sql.SQL("SELECT " + queries.COLUMNS + " FROM {}").format(db.table()) + clause
        + queries.order(sort_by, sort_order) + sql.SQL(" LIMIT %s OFFSET %s"),
        [*params, limit, offset],
    )
    return [from_row(r) for r in rows]


class Hidden(NamedTuple):
    """What :func:`hide` found: the approval's status, and whether it was hidden now."""

    status: str
    hidden: bool


def hide(db: Database, approval_id: str) -> Hidden | None:
    """Tombstone a decided approval (``deleted_at``); a pending one is left as it is. Returns its status and
    whether it was hidden now, or None when there is no such approval."""
    rows = db.query(
        sql.SQL("WITH found AS (SELECT id, status, deleted_at FROM {t} WHERE id = %s),"
                " hidden AS (UPDATE {t} SET deleted_at = now() WHERE id = %s AND deleted_at IS NULL"
                " AND status <> 'pending' RETURNING id)"
                " SELECT found.status, (SELECT count(*) FROM hidden) AS hidden FROM found"
                ).format(t=db.table()), [approval_id, approval_id])
    return Hidden(rows[0]["status"], bool(rows[0]["hidden"])) if rows else None


async def holds_run(db: Database, run_id: str) -> bool:
    """Whether the table holds any approval of ``run_id`` (its own, or its members' for a team run)."""
    query = sql.SQL("SELECT 1 FROM {} WHERE run_id = %s OR team_run_id = %s LIMIT 1").format(db.table())
    return bool(await db.aquery(query, [run_id, run_id]))


async def statuses(db: Database, ids: list[str], *, timeout: float) -> dict[str, str]:
    """Approval id -> status of those of ``ids`` the table holds; every wait bounded by ``timeout`` (a pool
    waiting for PostgreSQL to come back included).

    Raises:
        psycopg.OperationalError, psycopg_pool.PoolTimeout, TimeoutError: as they came (the caller polls).
    """
    pool = await asyncio.wait_for(db.apool(), timeout=timeout)
    async with pool.connection(timeout=timeout) as conn:
        query = sql.SQL("SELECT id, status FROM {} WHERE id = ANY(%s)").format(db.table())
        return {row[0]: row[1] for row in await (await conn.execute(query, [ids])).fetchall()}


def _events_query(db: Database) -> sql.Composable:
    return sql.SQL("SELECT seq, kind, payload, at, prev_hash, hash FROM {} WHERE approval_id = %s ORDER BY seq").format(
        db.table("_events"))


def events(db: Database, approval_id: str) -> list[TrailEvent]:
    """The append-only history of one approval, oldest first, ``at`` in epoch seconds."""
    return [event_from_row(r) for r in db.query(_events_query(db), [approval_id])]


async def aevents(db: Database, approval_id: str) -> list[TrailEvent]:
    """:func:`events` on the async pool."""
    return [event_from_row(r) for r in await db.aquery(_events_query(db), [approval_id])]


# How many escalation steps have fired for a pending approval (from its trail), beside its page row.
_ESCALATION = ("CASE WHEN status = 'pending' THEN (SELECT COALESCE(max((payload->>'level')::int), count(*)) FROM {events}"
               " WHERE approval_id = a.id AND kind = 'escalated') ELSE 0 END AS escalation_level")


async def inbox_page(db: Database, status: str | None, filters: dict[str, Any], conditions: list[Condition], *,
                     sort_by: str, sort_order: str, after: tuple[Any, str] | None, limit: int,
                     offset: int) -> tuple[list[Listed], TotalCount]:
    """Up to ``limit`` records of a keyset (``after``) or offset page of the inbox, each with its escalation
    level and its sort key (a cursor after it names it), and how many match (``counts``); the page and its
    count in one round trip on one connection.

    ``conditions``: who may see what (the caller's rule). Audit approvals still waiting are listed: they
    are decided in the inbox.
    """
    cond, order, key_params = queries.keyset(sort_by, sort_order, after)
    where, params = queries.where(status, filters, [*conditions, (cond, key_params)], undecided_audit=True)
    counting = counts.plan(db.approvals_table, status, filters, conditions, undecided_audit=True)
    page = sql.SQL("SELECT " + queries.COLUMNS + ", " + _ESCALATION + " FROM {approvals} AS a").format(
        approvals=db.table(), events=db.table("_events")) + where + order + sql.SQL(" LIMIT %s OFFSET %s")
    rows, [counted] = await db.aqueries((page, [*params, limit, offset]), (counting.query, counting.params))
    listed = [Listed(from_row(r), r["escalation_level"], queries.keyset_value(sort_by, r)) for r in rows]
    return listed, await db.acount(counting, counted)


def compliance(db: Database, month: str | None) -> list[dict[str, Any]]:
    """Per tool and month: counts by status, median and p95 wait in seconds (decided approvals only).
    Every approval counts, hidden ones included: the report is the trail's. Rows as selected: they are
    ``PostgresDb.compliance_report``'s public dicts, not records."""
    clause, params = queries.where(None, {"month": month} if month else {}, include_deleted=True, undecided_audit=True)
    wait = sql.SQL("extract(epoch FROM resolved_at - created_at)")
    return db.query(
        sql.SQL(
            "SELECT context ->> 'tool_name' AS tool_name,"
            " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, count(*) AS total,"
            " count(*) FILTER (WHERE status = 'approved') AS approved,"
            " count(*) FILTER (WHERE status = 'rejected') AS rejected,"
            " count(*) FILTER (WHERE status = 'pending') AS pending,"
            " count(*) FILTER (WHERE status = 'expired') AS expired,"
            " count(*) FILTER (WHERE status = 'cancelled') AS cancelled,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY {w}) FILTER (WHERE resolved_at IS NOT NULL) AS median_wait_s,"
            " percentile_cont(0.95) WITHIN GROUP (ORDER BY {w}) FILTER (WHERE resolved_at IS NOT NULL) AS p95_wait_s"
            " FROM {t}"
        ).format(w=wait, t=db.table()) + clause + sql.SQL(" GROUP BY 1, 2 ORDER BY 2, 1"),
        params,
    )
