"""Versioned migrations, safe to run from several workers at once (an advisory lock serialises them)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from psycopg import sql

from hitl.errors import ConfigurationError

# A migration's version is its place here: only ever append.
MIGRATIONS = ["001_approvals.sql", "002_team_run_id.sql", "003_quarantine.sql", "004_service.sql", "005_links.sql",
              "006_counts.sql", "007_trail_seals.sql", "008_idempotency_lease.sql", "009_agno_records.sql",
              "010_sessions.sql"]
_LOCK_KEY = 0x6869746C  # 'hitl'
SEALS = 7
"""The schema version from which events carry ``key_id`` and rows their ``seal`` (the writer asks)."""
AGNO_RECORDS = 9
"""The schema version from which rows carry ``team_name``, ``updated_at`` and the ``deleted_at`` tombstone."""


MIN_SERVER_VERSION = 15
"""The oldest PostgreSQL the migrations run on (migration 006's ``NULLS NOT DISTINCT``)."""


def server_version_num(conn: Any) -> int:
    """The server's ``server_version_num`` (150004 for 15.4), as it reports it."""
    row = conn.execute("SELECT current_setting('server_version_num')::int AS num").fetchone()
    return int(row["num"] if isinstance(row, dict) else row[0])


def _version_name(num: int) -> str:
    """``server_version_num`` as people write it: 140009 is 14.9, 90624 is 9.6.24."""
    if num >= 100000:
        return f"{num // 10000}.{num % 10000}"
    return f"{num // 10000}.{num // 100 % 100}.{num % 100}"


def check_server_version(num: int) -> None:
    """Refuse a server older than the migrations need, before any of them runs.

    Raises:
        ConfigurationError: naming the version found and the one needed.
    """
    if num < MIN_SERVER_VERSION * 10000:
        raise ConfigurationError(
            f"PostgreSQL {_version_name(num)} (server_version_num {num}) is too old: hitl's migrations need "
            f"PostgreSQL {MIN_SERVER_VERSION} or later (NULLS NOT DISTINCT, migration 006); upgrade the server")


def table_names(approvals_table: str) -> dict[str, sql.Identifier]:
    """Every identifier a migration names, derived from the approvals table's name."""
    base = approvals_table
    return {
        "approvals": sql.Identifier(base),
        "session_runs": sql.Identifier(f"{base}_session_runs"),
        "session_runs_session": sql.Identifier(f"{base}_session_runs_idx"),
        "sessions": sql.Identifier(f"{base}_sessions"),
        "events": sql.Identifier(f"{base}_events"),
        "quarantine": sql.Identifier(f"{base}_quarantine"),
        "tokens": sql.Identifier(f"{base}_tokens"),
        "idempotency": sql.Identifier(f"{base}_idempotency"),
        "links": sql.Identifier(f"{base}_links"),
        "links_expires": sql.Identifier(f"{base}_links_expires_idx"),
        "idempotency_created": sql.Identifier(f"{base}_idempotency_created_idx"),
        "events_cursor": sql.Identifier(f"{base}_events_cursor_idx"),
        "approvals_status_created": sql.Identifier(f"{base}_status_created_idx"),
        "approvals_created": sql.Identifier(f"{base}_created_idx"),
        "approvals_run": sql.Identifier(f"{base}_run_idx"),
        "approvals_tool": sql.Identifier(f"{base}_tool_idx"),
        "approvals_agent": sql.Identifier(f"{base}_agent_idx"),
        "approvals_resolved_by": sql.Identifier(f"{base}_resolved_by_idx"),
        "approvals_pending": sql.Identifier(f"{base}_pending_idx"),
        "approvals_user": sql.Identifier(f"{base}_user_idx"),
        "approvals_team_run": sql.Identifier(f"{base}_team_run_idx"),
        "approvals_team": sql.Identifier(f"{base}_team_idx"),
        "events_append_only": sql.Identifier(f"{base}_events_append_only"),
        "events_no_truncate": sql.Identifier(f"{base}_events_no_truncate"),
        "counts": sql.Identifier(f"{base}_counts"),
        "counts_key": sql.Identifier(f"{base}_counts_key"),
        "count_deltas": sql.Identifier(f"{base}_count_deltas"),
        "count_change": sql.Identifier(f"{base}_count_change"),
        "count_truncate": sql.Identifier(f"{base}_count_truncate"),
        "counts_insert_delete": sql.Identifier(f"{base}_counts_insert_delete"),
        "counts_update": sql.Identifier(f"{base}_counts_update"),
        "counts_truncated": sql.Identifier(f"{base}_counts_truncated"),
        "approvals_session": sql.Identifier(f"{base}_session_idx"),
        "approvals_kind": sql.Identifier(f"{base}_kind_idx"),
        "approvals_type": sql.Identifier(f"{base}_type_idx"),
        "checkpoints": sql.Identifier(f"{base}_checkpoints"),
        "checkpoint_heads": sql.Identifier(f"{base}_checkpoint_heads"),
        "checkpoint_heads_approval": sql.Identifier(f"{base}_cp_heads_idx"),
        "checkpoints_append_only": sql.Identifier(f"{base}_cp_append_only"),
        "checkpoints_no_truncate": sql.Identifier(f"{base}_cp_no_truncate"),
        "checkpoint_heads_append_only": sql.Identifier(f"{base}_cph_append_only"),
        "checkpoint_heads_no_truncate": sql.Identifier(f"{base}_cph_no_truncate"),
    }


def _statements(name: str, names: dict[str, sql.Identifier]) -> list[sql.Composed]:
    text = resources.files("hitl.store.migrations").joinpath(name).read_text()
    # Split on the blank-line-free ';\n' of each statement, keeping $$-quoted function bodies whole.
    parts: list[str] = []
    current: list[str] = []
    in_body = False
    for line in text.splitlines():
        if line.strip().startswith("--") and not current:
            continue
        current.append(line)
        if line.count("$$") % 2:
            in_body = not in_body
        if line.rstrip().endswith(";") and not in_body:
            parts.append("\n".join(current))
            current = []
    return [sql.SQL(p).format(**names) for p in parts]


def migrate(conn: Any, approvals_table: str) -> int:
    """Bring the schema of ``approvals_table`` up to date, in one transaction (sync connection); its version now.

    Raises:
        ConfigurationError: the server is older than PostgreSQL 15 (nothing is changed).
    """
    names = table_names(approvals_table)
    with conn.transaction():
        check_server_version(server_version_num(conn))  # before anything is changed
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS hitl_schema_migrations ("
            " approvals_table text NOT NULL, version integer NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (approvals_table, version))"
        )
        done = {row["version"] for row in conn.execute(
            "SELECT version FROM hitl_schema_migrations WHERE approvals_table = %s", (approvals_table,)
        )}
        for version, name in enumerate(MIGRATIONS, start=1):
            if version in done:
                continue
            for statement in _statements(name, names):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO hitl_schema_migrations (approvals_table, version) VALUES (%s, %s)", (approvals_table, version)
            )
    return len(MIGRATIONS)
