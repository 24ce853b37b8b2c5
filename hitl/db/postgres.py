"""PostgreSQL, where approvals are mirrored for audit queries."""

from __future__ import annotations

import os
import re

from hitl.errors import ConfigurationError

__all__ = ["PostgresDb"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresDb:
    """A PostgreSQL database for the audit trail.

    Args:
        db_url: A libpq connection string or URL; defaults to ``DATABASE_URL``.
        approvals_table: Table of approval records.
        session_table: Table of agent sessions.

    Raises:
        ConfigurationError: a table name that is not a plain SQL identifier; on first use, no
            URL given and ``DATABASE_URL`` unset.
    """

    def __init__(
        self,
        db_url: str | None = None,
        *,
        approvals_table: str = "approvals",
        session_table: str = "agent_sessions",
    ) -> None:
        for label, name in (("approvals_table", approvals_table), ("session_table", session_table)):
            if not _IDENTIFIER.match(name):
                raise ConfigurationError(f"PostgresDb {label}={name!r} is not a plain SQL identifier")
        self._db_url = db_url
        self.approvals_table = approvals_table
        self.session_table = session_table

    @property
    def db_url(self) -> str:
        """The URL given, else ``DATABASE_URL`` read now (modules defining agents load before it is set)."""
        url = self._db_url or os.environ.get("DATABASE_URL")
        if not url:
            raise ConfigurationError("PostgresDb needs db_url= or the DATABASE_URL environment variable")
        return url

    def __repr__(self) -> str:
        # The URL may carry a password: never print it.
        return f"PostgresDb(approvals_table={self.approvals_table!r}, session_table={self.session_table!r})"
