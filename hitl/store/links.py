"""The one-click links used so far (``<approvals_table>_links``): a link's id is claimed before its decision.

What a link is and when it may decide is ``hitl.security.links``'; a row here means "used, or being used now".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

if TYPE_CHECKING:
    from hitl.store.database import Database


async def used(db: Database, link_id: str) -> bool:
    """Whether the link's id is claimed."""
    rows = await db.aquery(sql.SQL("SELECT 1 FROM {} WHERE id = %s").format(db.table("_links")), [link_id])
    return bool(rows)


async def claim(db: Database, *, link_id: str, approval_id: str, approver: str, decision: str, expires_at: float) -> bool:
    """Claim the link's id; False when it already was. Rows of links expired a day ago go in the same statement."""
    table = db.table("_links")
    rows = await db.aquery(
        sql.SQL("WITH gone AS (DELETE FROM {} WHERE expires_at < now() - interval '1 day') "
                "INSERT INTO {} (id, approval_id, approver, decision, expires_at) VALUES (%s, %s, %s, %s, to_timestamp(%s)) "
                "ON CONFLICT (id) DO NOTHING RETURNING id").format(table, table),
        [link_id, approval_id, approver, decision, expires_at])
    return bool(rows)


async def release(db: Database, link_id: str) -> None:
    """Drop the link's claim: it may be used again."""
    await db.aquery(sql.SQL("DELETE FROM {} WHERE id = %s").format(db.table("_links")), [link_id])
