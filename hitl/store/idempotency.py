"""The claims and answers of ``Idempotency-Key`` (``<approvals_table>_idempotency``).

The rules (leases, replays, what is kept) are ``hitl.service.idempotency``'s; these are its statements.
A claim is named by the principal, the key and the claim's own id: a request that outlived its lease
touches only its own claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql
from psycopg.types.json import Jsonb

if TYPE_CHECKING:
    from hitl.store.database import Database

_MINE = sql.SQL("principal = %s AND key = %s AND claim = %s")


@dataclass(frozen=True)
class Claim:
    """One request's claim on a key: ``(principal, key)`` and its own id."""

    principal: str
    key: str
    claim: str

    def params(self) -> list[str]:
        return [self.principal, self.key, self.claim]


@dataclass(frozen=True)
class Claimed:
    """What claiming found: the key claimed now (``inserted``), a lapsed claim taken over (``taken``), and
    the key's row as it stands (``request_hash``, ``status_code``, ``body``, ``claim``, ``created_at``,
    ``lease_left`` in seconds), None if it expired between the statements."""

    inserted: bool
    taken: bool
    row: dict[str, Any] | None


def _table(db: Database) -> sql.Identifier:
    return sql.Identifier(f"{db.approvals_table}_idempotency")


async def claim(db: Database, mine: Claim, request_hash: str, *, kept_for: str, lease_seconds: float) -> Claimed:
    """In one round trip: drop keys older than ``kept_for``; claim the key, or take over a claim on the same
    request whose lease of ``lease_seconds`` ran out; read the key's row."""
    table = _table(db)
    who = [mine.principal, mine.key]
    _, inserted, taken, found = await db.aqueries(
        (sql.SQL("DELETE FROM {} WHERE created_at < now() - %s::interval").format(table), [kept_for]),
        (sql.SQL("INSERT INTO {} (principal, key, request_hash, claim) VALUES (%s, %s, %s, %s) "
                 "ON CONFLICT DO NOTHING RETURNING key").format(table), [*who, request_hash, mine.claim]),
        (sql.SQL("UPDATE {} SET claim = %s, claimed_at = now() WHERE principal = %s AND key = %s AND request_hash = %s "
                 "AND status_code IS NULL AND claimed_at < now() - make_interval(secs => %s) RETURNING key").format(table),
         [mine.claim, *who, request_hash, lease_seconds]),
        (sql.SQL("SELECT request_hash, status_code, body, claim, created_at, "
                 "extract(epoch FROM claimed_at - now()) + %s AS lease_left FROM {} WHERE principal = %s AND key = %s")
         .format(table), [lease_seconds, *who]),
    )
    return Claimed(inserted=bool(inserted), taken=bool(taken), row=found[0] if found else None)


async def renew(db: Database, mine: Claim) -> bool:
    """Renew the claim's lease; False once it is no longer held (taken over, answered, or gone)."""
    held = await db.aquery(sql.SQL("UPDATE {} SET claimed_at = now() WHERE principal = %s AND key = %s "
                                   "AND claim = %s AND status_code IS NULL RETURNING key").format(_table(db)), mine.params())
    return bool(held)


async def answer(db: Database, mine: Claim, status_code: int, body: Any) -> None:
    """Keep the answer (``body``: JSON) under the claim, for retries to replay.

    Raises:
        InvalidInputError: an answer PostgreSQL cannot hold.
    """
    await db.aquery(sql.SQL("UPDATE {} SET status_code = %s, body = %s WHERE {}").format(_table(db), _MINE),
                    [status_code, Jsonb(body), *mine.params()])


async def release(db: Database, mine: Claim) -> None:
    """Drop the claim: a retry with its key runs again."""
    await db.aquery(sql.SQL("DELETE FROM {} WHERE {}").format(_table(db), _MINE), mine.params())
