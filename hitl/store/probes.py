"""What the service's probes and metrics read (``hitl.service.health``): nothing of a request, no ids."""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

if TYPE_CHECKING:
    from hitl.store.database import Database


async def ping(db: Database) -> None:
    """One round trip to PostgreSQL (``/readyz``).

    Raises:
        DatabaseUnavailableError: PostgreSQL unreachable.
    """
    await db.aquery("SELECT 1")


async def pending_by_tool(db: Database) -> dict[str, int]:
    """How many approvals wait for a decision, by tool name (``""`` for none): the ``hitl_pending_approvals`` gauge."""
    rows = await db.aquery(sql.SQL(
        "SELECT tool_name, count(*) AS n FROM {} WHERE status = 'pending' GROUP BY tool_name").format(
        sql.Identifier(db.approvals_table)))
    return {row["tool_name"] or "": row["n"] for row in rows}
