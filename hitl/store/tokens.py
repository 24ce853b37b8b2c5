"""The API tokens' table (``<approvals_table>_tokens``): rows of ``hitl.security.tokens.TokenStore``.

A row holds ``id``, ``secret_hash`` (sha256 of the secret, never the secret), ``principal``, ``scopes``,
``created_at``, ``expires_at``, ``revoked_at`` and ``created_by``; what a token proves is decided by
``hitl.security.tokens``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from psycopg import sql

if TYPE_CHECKING:
    from hitl.store.database import Database


def _table(db: Database) -> sql.Identifier:
    return sql.Identifier(f"{db.approvals_table}_tokens")


def insert(db: Database, *, token_id: str, secret_hash: str, principal: str, scopes: list[str],
           expires_at: datetime | None, created_by: str | None) -> dict[str, Any]:
    """Add a token; returns its row."""
    [row] = db.query(
        sql.SQL("INSERT INTO {} (id, secret_hash, principal, scopes, expires_at, created_by)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING *").format(_table(db)),
        [token_id, secret_hash, principal, scopes, expires_at, created_by],
    )
    return row


def rows(db: Database) -> list[dict[str, Any]]:
    """Every token's row, newest first."""
    return db.query(sql.SQL("SELECT * FROM {} ORDER BY created_at DESC, id").format(_table(db)))


def revoke(db: Database, token_id: str) -> dict[str, Any] | None:
    """Mark a token revoked (its first revocation's time stays); its row, or None if there is no such token."""
    found = db.query(
        sql.SQL("UPDATE {} SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s RETURNING *").format(_table(db)),
        [token_id],
    )
    return found[0] if found else None


async def find(db: Database, token_id: str) -> dict[str, Any] | None:
    """A token's row by id (on the async pool: every request authenticates), or None."""
    found = await db.aquery(sql.SQL("SELECT * FROM {} WHERE id = %s").format(_table(db)), [token_id])
    return found[0] if found else None
