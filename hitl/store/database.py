"""hitl's PostgreSQL: one database's pools, its migrated schema, and statements run on it.

Everything that runs SQL takes a :class:`Database` (the mirror, the service's stores, the client core's
reads); ``PostgresDb`` (Agno's ``agno.db.postgres``) is this class with Agno's query API on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import weakref
from typing import Any

import psycopg
import psycopg_pool
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from hitl import limits
from hitl.errors import ConfigurationError, DatabaseUnavailableError, InvalidInputError
from hitl.settings import environment
from hitl.store import audit as _audit
from hitl.store import counts as _counts
from hitl.store import schema as _schema
from hitl.store.counts import TotalCount

_log = logging.getLogger(__name__)
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
"""A table name hitl accepts: a plain SQL identifier, short enough for its suffixes."""

_with_async_pools: weakref.WeakSet[Database] = weakref.WeakSet()
"""Databases that opened an async pool, for :func:`close_async_pools`."""


async def close_async_pools() -> None:
    """Close every async pool opened on the running loop (hitl's loop thread does it before it stops, so
    no pool worker is left pending when the interpreter exits)."""
    for db in list(_with_async_pools):
        try:
            await db.aclose()
        except Exception as exc:  # noqa: BLE001 - shutting down: logged, not raised
            _log.debug("closing %s's pool: %s", db.approvals_table, exc)


class Database:
    """One PostgreSQL database and hitl's tables in it (``approvals_table`` and its suffixed companions).

    Args:
        db_url: A libpq connection string or URL; defaults to ``DATABASE_URL``, read at first use.
        approvals_table: The approvals table; its events, quarantine, counts... tables take its name as prefix.
        audit_keys: The audit keys (``kid:BASE64,...``) or None for ``HITL_AUDIT_KEYS`` read at first use.
        owner: How errors name this database's maker (``PostgresDb`` for the facade).

    Raises:
        ConfigurationError: a table name that is not a plain SQL identifier.
    """

    def __init__(self, db_url: str | None = None, *, approvals_table: str = "approvals",
                 audit_keys: str | _audit.AuditKeys | None = None, owner: str = "Database") -> None:
        if not IDENTIFIER.match(approvals_table):
            raise ConfigurationError(f"{owner} approvals_table={approvals_table!r} is not a plain SQL identifier (41 chars at most)")
        self._owner = owner
        self._db_url = db_url
        self.approvals_table = approvals_table
        self._pool: ConnectionPool | None = None
        # Per event loop, weakly: a new loop that happens to get a dead one's id() never finds its pool.
        self._async_pools: weakref.WeakKeyDictionary[Any, AsyncConnectionPool] = weakref.WeakKeyDictionary()
        self._migrated = False
        self._sealed = True  # the schema has seals and keyed events (set by the migration)
        self._records = True  # the schema has Agno's record columns: team_name, updated_at, deleted_at (migration 009)
        self._lock = threading.Lock()
        self._audit_keys = _audit.AuditKeys.parse(audit_keys, "audit_keys") if isinstance(audit_keys, str) else audit_keys
        self._audit_keys_read = audit_keys is not None

    @property
    def db_url(self) -> str:
        """The URL given, else ``DATABASE_URL`` read now (modules defining agents load before it is set)."""
        from_env = environment().database_url
        url = self._db_url or (from_env.get_secret_value() if from_env is not None else None)
        if not url:
            raise ConfigurationError(f"{self._owner} needs db_url= or the DATABASE_URL environment variable")
        return url

    @property
    def audit_keys(self) -> _audit.AuditKeys | None:
        """The audit keys given, else those of ``HITL_AUDIT_KEYS`` (or its file), read once; None: unkeyed."""
        if not self._audit_keys_read:
            self._audit_keys, self._audit_keys_read = _audit.AuditKeys.from_env(), True
        return self._audit_keys

    # ------------------------------------------------------------------ connections and schema
    def pool(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(self.db_url, min_size=1, max_size=4, open=True,
                                            kwargs={"row_factory": dict_row, "autocommit": True})
            if not self._migrated:
                with self._pool.connection() as conn:
                    version = _schema.migrate(conn, self.approvals_table)
                    self._sealed, self._records = version >= _schema.SEALS, version >= _schema.AGNO_RECORDS
                self._migrated = True
            return self._pool

    def migrate(self) -> None:
        """Create or update the schema now (it otherwise happens on first use)."""
        self.pool()

    async def apool(self) -> AsyncConnectionPool:
        """This event loop's async pool, on a migrated schema."""
        if not self._migrated:
            await asyncio.to_thread(self.pool)
        loop = asyncio.get_running_loop()
        pool = self._async_pools.get(loop)
        if pool is None:
            pool = AsyncConnectionPool(self.db_url, min_size=1, max_size=8, open=False, kwargs={"autocommit": True})
            await pool.open()
            self._async_pools[loop] = pool
            _with_async_pools.add(self)
        return pool

    async def aquery(self, query: Any, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """:meth:`query` on the async pool (the service's reads and writes)."""
        return (await self.aqueries((query, params)))[0]

    async def aqueries(self, *statements: tuple[Any, list[Any] | tuple[Any, ...]]) -> list[list[dict[str, Any]]]:
        """Statements on one connection, each one's rows; several are sent at once (a pipeline): one round
        trip and one connection for what would take one each (the service's page and its count)."""
        for _, params in statements:
            for p in params:
                if isinstance(p, str) and (problem := limits.unstorable(p, "a value")) is not None:
                    raise InvalidInputError(f"{problem}; PostgreSQL cannot hold it")
        try:
            async with (await self.apool()).connection() as conn:
                cursors = [conn.cursor(row_factory=dict_row) for _ in statements]
                async with conn.pipeline() if len(statements) > 1 else contextlib.nullcontext():
                    for cursor, (query, params) in zip(cursors, statements, strict=True):
                        await cursor.execute(query, params)
                return [await c.fetchall() if c.description is not None else [] for c in cursors]
        except psycopg.DataError as exc:
            raise InvalidInputError(f"PostgreSQL refused the query's values: {exc}") from None
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            raise self.unreachable(exc) from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    async def aclose(self) -> None:
        """Close this event loop's async pool (the sync pool stays: :meth:`close`)."""
        pool = self._async_pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()

    def query(self, query: Any, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        for p in params:
            if isinstance(p, str) and (problem := limits.unstorable(p, "a filter value")) is not None:
                raise InvalidInputError(f"{problem}; PostgreSQL cannot compare it")
        try:
            with self.pool().connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
                return cursor.execute(query, params).fetchall()
        except psycopg.DataError as exc:
            raise InvalidInputError(f"PostgreSQL refused the query's values: {exc}") from None
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            raise self.unreachable(exc) from None

    def unreachable(self, exc: Exception) -> DatabaseUnavailableError:
        # psycopg's message names the host, port and user: logged here, kept out of what callers are told.
        _log.warning("PostgreSQL (%s) unreachable: %s", self.approvals_table, exc)
        return DatabaseUnavailableError(f"PostgreSQL ({self.approvals_table}) is unreachable ({type(exc).__name__}); "
                                        "retry once it is back")

    def table(self, suffix: str = "") -> sql.Identifier:
        return sql.Identifier(self.approvals_table + suffix)

    def count(self, counting: _counts.CountPlan) -> TotalCount:
        """How many rows ``counting`` matches: exact, or PostgreSQL's estimate flagged ``estimated``."""
        row = self.query(counting.query, counting.params)[0]
        total = counting.total(row)
        return total if total is not None else counting.estimate(row, self.query(*counting.explain)[0]["QUERY PLAN"])

    async def acount(self, counting: _counts.CountPlan, row: dict[str, Any] | None = None) -> TotalCount:
        """:meth:`count` on the async pool (the service); ``row``: ``counting.query``'s answer, if already asked."""
        row = row if row is not None else (await self.aquery(counting.query, counting.params))[0]
        total = counting.total(row)
        return total if total is not None else counting.estimate(row, (await self.aquery(*counting.explain))[0]["QUERY PLAN"])
