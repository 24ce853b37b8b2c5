"""Writing approval events: idempotent upserts and a hash chain per approval."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from hitl import limits
from hitl._wire import ApprovalEvent


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(prev_hash: str, approval_id: str, seq: int, kind: str, payload: dict[str, Any], at: datetime) -> str:
    body = canonical({"approval_id": approval_id, "seq": seq, "kind": kind, "payload": payload, "at": at.isoformat()})
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


def _ts(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


# What PostgreSQL refuses for the content of a value (not for being down): retrying cannot help.
_CONTENT_ERRORS = (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded, UnicodeEncodeError)


async def write_events(conn: AsyncConnection[Any], approvals: str, events: list[ApprovalEvent]) -> list[str]:
    """Record events in order, in one transaction; events already written are skipped.

    An event PostgreSQL refuses for its content is quarantined rather than retried forever
    (which would hold its run open): the trail gets a storable copy, marked ``quarantined``, so
    the approval's status and its hash chain stay whole, and ``<approvals>_quarantine`` keeps
    the event as the run recorded it. Returns the quarantined events' ``approval_id#seq``.
    """
    try:
        async with conn.transaction():
            for ev in events:
                await _write(conn, approvals, ev)
        return []
    except _CONTENT_ERRORS:
        pass
    quarantined = []
    for ev in events:  # one at a time, to find the event refused
        try:
            async with conn.transaction():
                await _write(conn, approvals, ev)
            continue
        except _CONTENT_ERRORS as exc:
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        try:
            async with conn.transaction():
                await _write(conn, approvals, _storable_copy(ev, error))
        except _CONTENT_ERRORS:
            async with conn.transaction():  # if even this is refused, the activity fails and says why
                await _write(conn, approvals, _bare_copy(ev, error))
        quarantine = sql.SQL(
            "INSERT INTO {q} (approval_id, seq, error, event) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING"
        ).format(q=sql.Identifier(f"{approvals}_quarantine"))
        original = json.dumps(ev.model_dump(mode="json"), ensure_ascii=True, sort_keys=True, default=str)
        async with conn.transaction():
            await conn.execute(quarantine, (limits.storable(ev.approval_id), ev.seq, limits.storable(error), original))
        quarantined.append(f"{ev.approval_id}#{ev.seq}")
    return quarantined


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return limits.storable(value)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def _storable_copy(ev: ApprovalEvent, error: str) -> ApprovalEvent:
    """The event with every text made storable (NUL, unpaired surrogates: U+FFFD) and marked as quarantined."""
    data = _storable(ev.model_dump(mode="python"))
    data["payload"] = {**data["payload"], "quarantined": {"error": limits.storable(error)}}
    return ApprovalEvent.model_validate(data)


def _bare_copy(ev: ApprovalEvent, error: str) -> ApprovalEvent:
    """What is left when even the storable copy is refused: who, what kind, which status, when."""
    return ev.model_copy(update={
        "payload": {"quarantined": {"error": limits.storable(error)}},
        "context": {"tool_name": limits.storable(str(ev.context.get("tool_name", "")))[:200], "quarantined": True},
        "resolution": None, "resolved_by": limits.storable(ev.resolved_by or "")[:256] or None,
        "session_id": None, "user_id": None,
    })


async def _write(conn: AsyncConnection[Any], approvals: str, ev: ApprovalEvent) -> None:
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
