"""Writing approval events: idempotent upserts and a hash chain per approval."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from hitl._wire import ApprovalEvent


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(prev_hash: str, approval_id: str, seq: int, kind: str, payload: dict[str, Any], at: datetime) -> str:
    body = canonical({"approval_id": approval_id, "seq": seq, "kind": kind, "payload": payload, "at": at.isoformat()})
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


def _ts(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


async def write_events(conn: AsyncConnection[Any], approvals: str, events: list[ApprovalEvent]) -> None:
    """Record events in order, in one transaction; events already written are skipped."""
    table = sql.Identifier(approvals)
    events_table = sql.Identifier(f"{approvals}_events")
    upsert = sql.SQL(
        "INSERT INTO {t} (id, run_id, requirement_id, session_id, user_id, agent_name, requirement_kind, approval_type,"
        " status, context, arguments_digest, created_at, resolved_by, resolved_at, resolution, version, team_run_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (id) DO UPDATE SET status = excluded.status, context = excluded.context,"
        " arguments_digest = excluded.arguments_digest, resolved_by = excluded.resolved_by,"
        " resolved_at = excluded.resolved_at, resolution = excluded.resolution, version = excluded.version"
        " WHERE {t}.version < excluded.version"
    ).format(t=table)
    previous = sql.SQL("SELECT hash FROM {e} WHERE approval_id = %s AND seq = %s").format(e=events_table)
    insert = sql.SQL(
        "INSERT INTO {e} (approval_id, seq, kind, payload, at, prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (approval_id, seq) DO NOTHING"
    ).format(e=events_table)
    async with conn.transaction():
        for ev in events:
            await conn.execute(upsert, (
                ev.approval_id, ev.run_id, ev.requirement_id, ev.session_id, ev.user_id, ev.agent_name, ev.requirement_kind,
                ev.approval_type, ev.status, Jsonb(ev.context), ev.arguments_digest, _ts(ev.created_at),
                ev.resolved_by, _ts(ev.resolved_at), Jsonb(ev.resolution) if ev.resolution is not None else None,
                ev.seq, ev.team_run_id,
            ))
            prev_hash = ""
            if ev.seq > 1:
                row = await (await conn.execute(previous, (ev.approval_id, ev.seq - 1))).fetchone()
                prev_hash = row[0] if row else "missing"
            at = _ts(ev.at)
            assert at is not None
            digest = event_hash(prev_hash, ev.approval_id, ev.seq, ev.kind, ev.payload, at)
            await conn.execute(insert, (ev.approval_id, ev.seq, ev.kind, Jsonb(ev.payload), at, prev_hash, digest))
