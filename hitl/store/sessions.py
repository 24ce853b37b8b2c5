"""Sessions in PostgreSQL: the runs of a session (Agno's ``add_history_to_context``) and its state.

All SQL of sessions lives here; ``hitl._core.sessions`` decides when to call it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from psycopg import sql

if TYPE_CHECKING:
    from hitl.store.database import Database


def _t(db: Database, suffix: str) -> sql.Identifier:
    return sql.Identifier(db.approvals_table + suffix)


def run_started(db: Database, *, run_id: str, session_id: str, agent_name: str, message: str) -> None:
    """Record a run of the session as started (idempotent: a retried start changes nothing)."""
    db.query(sql.SQL("INSERT INTO {} (run_id, session_id, agent_name, input) VALUES (%s, %s, %s, %s) "
                      "ON CONFLICT (run_id) DO NOTHING RETURNING run_id").format(_t(db, "_session_runs")),
              [run_id, session_id, agent_name, message])


def run_completed(db: Database, *, run_id: str, content: str | None) -> None:
    """Record the answer of a run seen complete (the first answer stays: a run completes once)."""
    db.query(sql.SQL("UPDATE {} SET content = %s, completed_at = now() WHERE run_id = %s AND content IS NULL RETURNING run_id")
              .format(_t(db, "_session_runs")), [content or "", run_id])


def history(db: Database, *, session_id: str, agent_name: str, runs: int, before_run: str | None = None
            ) -> list[dict[str, Any]]:
    """The last ``runs`` completed runs of the session (oldest first) as chat messages: user, then assistant."""
    rows = db.query(sql.SQL(
        "SELECT input, content FROM (SELECT input, content, created_at FROM {} WHERE session_id = %s AND agent_name = %s"
        " AND content IS NOT NULL AND run_id IS DISTINCT FROM %s ORDER BY created_at DESC LIMIT %s) recent"
        " ORDER BY created_at").format(_t(db, "_session_runs")), [session_id, agent_name, before_run, runs])
    messages: list[dict[str, Any]] = []
    for r in rows:
        messages += [{"role": "user", "content": r["input"]}, {"role": "assistant", "content": r["content"]}]
    return messages


def get_state(db: Database, *, session_id: str, agent_name: str) -> dict[str, Any] | None:
    rows = db.query(sql.SQL("SELECT state FROM {} WHERE session_id = %s AND agent_name = %s")
                     .format(_t(db, "_sessions")), [session_id, agent_name])
    return dict(rows[0]["state"]) if rows else None


def merge_state(db: Database, *, session_id: str, agent_name: str, changed: dict[str, Any], removed: list[str]
                ) -> None:
    """Apply one tool call's changes to the stored state, key by key: calls running at once that change
    different keys both keep their change (the last writer wins only on the same key)."""
    db.query(sql.SQL(
        "INSERT INTO {t} (session_id, agent_name, state) VALUES (%s, %s, %s::jsonb) "
        "ON CONFLICT (session_id, agent_name) DO UPDATE SET state = ({t}.state - %s::text[]) || EXCLUDED.state, "
        "updated_at = now() RETURNING session_id").format(t=_t(db, "_sessions")),
        [session_id, agent_name, json.dumps(changed), removed])


def put_state(db: Database, *, session_id: str, agent_name: str, state: dict[str, Any]) -> None:
    db.query(sql.SQL("INSERT INTO {} (session_id, agent_name, state) VALUES (%s, %s, %s::jsonb) "
                      "ON CONFLICT (session_id, agent_name) DO UPDATE SET state = EXCLUDED.state, updated_at = now() "
                      "RETURNING session_id")
              .format(_t(db, "_sessions")), [session_id, agent_name, json.dumps(state)])
