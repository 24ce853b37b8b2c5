"""The audit trail in commit order, for the service's event stream (``GET /approvals/events``).

Events are read by ``(tx, id)``: the transaction that wrote each (``xid8``) and its id. Only events of
transactions older than every one still running are read, so a reader never passes one that commits late.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg import sql

from hitl.store import queries

if TYPE_CHECKING:
    from hitl.store.database import Database


async def horizon(db: Database) -> int:
    """The oldest transaction still running (or the next to start): every event of one before it has committed."""
    [row] = await db.aquery(sql.SQL("SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS x"))
    return int(row["x"])


class TrailFeed:
    """The events one reader may see, in commit order: all of them, or (``approvers`` given) those of
    approvals without approvers or whose approvers include one of ``approvers`` (``queries.approver_among``).

    Each row: ``tx`` (text), ``n`` (the event's id), ``approval_id``, ``seq``, ``kind``, ``payload``, ``at``,
    and the approval's ``status``, ``run_id``, ``team_run_id``, ``agent_name``, ``requirement_kind``, ``context``.
    """

    def __init__(self, db: Database, approvers: list[str] | None = None) -> None:
        self.db = db
        visible: sql.Composable = sql.SQL("TRUE")
        self._params: list[Any] = []
        if approvers is not None:
            visible, self._params = queries.approver_among(approvers)
        events, approvals = sql.Identifier(f"{db.approvals_table}_events"), db.table()
        self._query = sql.SQL(
            "SELECT e.tx::text AS tx, e.id AS n, e.approval_id, e.seq, e.kind, e.payload, e.at, a.status, a.run_id,"
            " a.team_run_id, a.agent_name, a.requirement_kind, a.context"
            " FROM {e} e JOIN {a} a ON a.id = e.approval_id"
            " WHERE (e.tx, e.id) > (%s::text::xid8, %s) AND e.tx < pg_snapshot_xmin(pg_current_snapshot()) AND {v}"
            " ORDER BY e.tx, e.id LIMIT %s").format(e=events, a=approvals, v=visible)

    async def after(self, position: tuple[int, int], limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` events after ``position`` (``(tx, id)``) that have surely committed."""
        return await self.db.aquery(self._query, [str(position[0]), position[1], *self._params, limit])
