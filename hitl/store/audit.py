"""Writing approval events: idempotent upserts, a hash chain per approval and a seal on its row.

Each event's ``hash`` chains it to the one before: sha256(prev_hash | canonical event), or, with an
audit key, HMAC-SHA256 under that key, its id kept in ``key_id`` (keys rotate: the first of
``HITL_AUDIT_KEYS`` writes, every listed one verifies). In the same transaction the approval's row
gets a ``seal``: the same function of every column the mirror wrote, as PostgreSQL stores it, and
of the chain's head (the hash of the event at ``version``). ``hitl audit verify`` recomputes both
(``_verify``). Without a key anyone with the tables can recompute them; with one, only a holder of
the key can, and the database's owner need not be one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection, Connection, sql
from psycopg.types.json import Jsonb

from hitl import limits
from hitl._wire import ApprovalEvent
from hitl.errors import ConfigurationError
from hitl.settings import environment, secret_setting

SEALED = ("id", "run_id", "requirement_id", "session_id", "user_id", "agent_name", "team_run_id", "requirement_kind",
          "approval_type", "status", "context", "arguments_digest", "created_at", "resolved_by", "resolved_at",
          "resolution", "version")
"""The columns of an approvals row its seal covers: every one the mirror writes (``tool_name`` is generated)."""

_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AuditKeys:
    """Named secret keys of the trail's hashes and seals; the first writes, every one verifies.

    Its repr names the key ids, never a key. Make a key with
    ``python -c "import os, base64; print(base64.b64encode(os.urandom(32)).decode())"``.
    """

    keys: dict[str, bytes] = field(repr=False)
    current: str

    @classmethod
    def parse(cls, text: str, source: str = "HITL_AUDIT_KEYS") -> AuditKeys:
        """Keys from ``kid:BASE64,kid:BASE64`` (commas or newlines between).

        Raises:
            ConfigurationError: no key, an item that is not ``KEY_ID:BASE64_KEY``, a key id that is not
                ``[A-Za-z0-9._-]{1,64}`` or is listed twice, a key shorter than 32 bytes. The message
                names the item by its position, never a key.
        """
        keys: dict[str, bytes] = {}
        for position, item in enumerate(filter(None, (p.strip() for p in re.split(r"[,\n]", text))), start=1):
            kid, sep, encoded = (part.strip() for part in item.partition(":"))
            if not sep or not _KEY_ID.match(kid):
                raise ConfigurationError(f"item {position} of {source}: not KEY_ID:BASE64_KEY (an id of [A-Za-z0-9._-])")
            if kid in keys:
                raise ConfigurationError(f"item {position} of {source}: the key id is listed twice")
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ConfigurationError(f"item {position} of {source}: the key is not base64") from None
            if len(key) < 32:
                raise ConfigurationError(f"item {position} of {source}: the key is {len(key)} bytes; give 32 or more")
            keys[kid] = key
        if not keys:
            raise ConfigurationError(f"{source} lists no key")
        return cls(keys, next(iter(keys)))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuditKeys | None:
        """The keys of ``HITL_AUDIT_KEYS``, else of the file ``HITL_AUDIT_KEYS_FILE`` names; None when neither is set."""
        found = secret_setting(environment().named() if env is None else env, "HITL_AUDIT_KEYS")
        return cls.parse(*found) if found is not None else None

    def mac(self, kid: str, message: bytes) -> str:
        """HMAC-SHA256 of ``message`` under key ``kid`` (hex). Raises KeyError for a key id not held."""
        return hmac.new(self.keys[kid], message, hashlib.sha256).hexdigest()


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _digest(message: bytes, keys: AuditKeys | None, kid: str | None) -> str:
    """sha256 of ``message``, or its HMAC under key ``kid`` (KeyError: a key id ``keys`` does not hold)."""
    if kid is None:
        return hashlib.sha256(message).hexdigest()
    if keys is None:
        raise KeyError(kid)
    return keys.mac(kid, message)


def event_hash(prev_hash: str, approval_id: str, seq: int, kind: str, payload: dict[str, Any], at: datetime,
               keys: AuditKeys | None = None, kid: str | None = None) -> str:
    """The event's link in its approval's chain: sha256, or HMAC-SHA256 under audit key ``kid``."""
    at = at.astimezone(UTC)  # as written, whatever time zone a reader's session gives it back in
    body = canonical({"approval_id": approval_id, "seq": seq, "kind": kind, "payload": payload, "at": at.isoformat()})
    return _digest(f"{prev_hash}|{body}".encode(), keys, kid)


def _plain(value: Any) -> Any:
    """A column's value as its seal reads it: times as whole microseconds since 1970 (any time zone)."""
    return (value - _EPOCH) // timedelta(microseconds=1) if isinstance(value, datetime) else value


def seal(row: Mapping[str, Any], head: str, keys: AuditKeys | None = None, kid: str | None = None) -> str:
    """The seal of an approvals row (its :data:`SEALED` columns as PostgreSQL returns them) and its chain's head."""
    body = canonical({**{c: _plain(row[c]) for c in SEALED}, "head": head, "key_id": kid})
    return _digest(f"seal|{body}".encode(), keys, kid)


def row_seal(row: Mapping[str, Any], head: str) -> str:
    """What a checkpoint records of a row: its seal, or for a row never sealed, the seal it would have without a key."""
    return str(row["seal"] or seal(row, head))


def heads_digest(heads: Iterable[tuple[Any, ...]]) -> tuple[int, str]:
    """How many heads (approval id, last seq, its hash, the row's seal) and the sha256 over them, in the order given."""
    digest, count = hashlib.sha256(), 0
    for head in heads:
        digest.update(canonical(list(head)).encode() + b"\n")
        count += 1
    return count, digest.hexdigest()


def checkpoint_mac(statement: str, keys: AuditKeys | None, kid: str | None) -> str:
    """A checkpoint statement's MAC: HMAC-SHA256 under audit key ``kid``, or sha256 without one."""
    return _digest(f"checkpoint|{statement}".encode(), keys, kid)


def write_checkpoint(conn: Connection[Any], approvals: str, keys: AuditKeys | None) -> dict[str, Any]:
    """Record every approval's last event (seq, hash) and its row's seal as a new checkpoint; return its statement.

    Only the heads that changed since the checkpoint before are stored (the rest are that one's);
    the statement names their count and digest, the count and digest of every head, the time, and
    the MAC of the checkpoint before it, and is MACed under the current audit key (sha256 without
    one: then only a copy kept elsewhere proves anything). ``conn``: in a REPEATABLE READ
    transaction whose trail has verified, holding the checkpoint lock (``PostgresDb.checkpoint``).
    """
    names = {"t": sql.Identifier(approvals), "e": sql.Identifier(f"{approvals}_events"),
             "cp": sql.Identifier(f"{approvals}_checkpoints"), "h": sql.Identifier(f"{approvals}_checkpoint_heads")}
    last = conn.execute(sql.SQL("SELECT n, mac FROM {cp} ORDER BY n DESC LIMIT 1").format(**names)).fetchone()
    n, prev = (last["n"] + 1, last["mac"]) if last else (1, "")
    moved = sql.SQL(
        "SELECT {columns}, a.seal, c.seq AS head_seq, c.hash AS head"
        " FROM (SELECT DISTINCT ON (approval_id) approval_id, seq, hash FROM {e} ORDER BY approval_id, seq DESC) c"
        " JOIN {t} a ON a.id = c.approval_id"
        " LEFT JOIN (SELECT DISTINCT ON (approval_id) approval_id, seq, hash FROM {h}"
        " ORDER BY approval_id, checkpoint DESC) p ON p.approval_id = c.approval_id"
        " WHERE p.approval_id IS NULL OR p.seq <> c.seq OR p.hash <> c.hash"
    ).format(columns=sql.SQL(", ").join(sql.Identifier("a", c) for c in SEALED), **names)
    insert = sql.SQL("INSERT INTO {h} (checkpoint, approval_id, seq, hash, row_seal) VALUES (%s, %s, %s, %s, %s)"
                     ).format(**names)
    with conn.cursor(name="hitl_checkpoint_changed") as cursor:
        cursor.execute(moved)
        while batch := cursor.fetchmany(1000):
            with conn.cursor() as writer:
                writer.executemany(insert, [(n, r["id"], r["head_seq"], r["head"], row_seal(r, r["head"])) for r in batch])
    heads = sql.SQL("SELECT DISTINCT ON (approval_id) approval_id, seq, hash, row_seal FROM {h}"
                    " ORDER BY approval_id, checkpoint DESC").format(**names)
    digests: list[tuple[int, str]] = []
    for query, params in ((sql.SQL("SELECT * FROM {h} WHERE checkpoint = %s").format(**names), [n]), (heads, [])):
        with conn.cursor(name=f"hitl_checkpoint_{len(digests)}") as cursor:
            cursor.execute(sql.SQL('SELECT * FROM ({q}) s ORDER BY approval_id COLLATE "C"').format(q=query), params)
            digests.append(heads_digest((r["approval_id"], r["seq"], r["hash"], r["row_seal"]) for r in cursor))
    (changed, delta), (count, digest) = digests
    kid = keys.current if keys is not None else None
    stated = {"table": approvals, "n": n, "at": datetime.now(UTC).isoformat(timespec="seconds"), "approvals": count,
              "digest": digest, "changed": changed, "delta": delta, "prev": prev, "key_id": kid}
    statement = canonical(stated)
    mac = checkpoint_mac(statement, keys, kid)
    conn.execute(sql.SQL("INSERT INTO {cp} (n, statement, key_id, mac) VALUES (%s, %s, %s, %s)").format(**names),
                 [n, statement, kid, mac])
    return {"n": n, "statement": stated, "key_id": kid, "mac": mac}


def _ts(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


# What PostgreSQL refuses for the content of a value (not for being down): retrying cannot help.
_CONTENT_ERRORS = (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded, UnicodeEncodeError)


async def write_events(conn: AsyncConnection[Any], approvals: str, events: list[ApprovalEvent],
                       keys: AuditKeys | None = None, *, sealed: bool = True,
                       team_of: Callable[[ApprovalEvent], str | None] | None = None) -> list[str]:
    """Record events in order, in one transaction; events already written are skipped.

    An event PostgreSQL refuses for its content is quarantined rather than retried forever
    (which would hold its run open): the trail gets a storable copy, marked ``quarantined``, so
    the approval's status and its hash chain stay whole, and ``<approvals>_quarantine`` keeps
    the event as the run recorded it. Returns the quarantined events' ``approval_id#seq``.
    ``keys``: the audit keys; the first keys each new event's hash and its row's seal. ``sealed``
    False: a schema from before seals (migration 007), written as it was: unkeyed, unsealed. ``team_of``:
    the team an event's approval was made for (its name, or None); given on a schema with Agno's record
    columns (migration 009), whose ``team_name`` and ``updated_at`` (the event's time) are written then.
    """
    keys = keys if sealed else None
    try:
        async with conn.transaction():
            heads: dict[str, tuple[int, str]] = {}
            for ev in events:
                await _write(conn, approvals, ev, keys, heads, sealed, team_of)
        return []
    except _CONTENT_ERRORS:
        pass
    quarantined = []
    heads = {}  # what the failed transaction wrote is gone
    for ev in events:  # one at a time, to find the event refused
        try:
            async with conn.transaction():
                await _write(conn, approvals, ev, keys, heads, sealed, team_of)
            continue
        except _CONTENT_ERRORS as exc:
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        try:
            async with conn.transaction():
                await _write(conn, approvals, _storable_copy(ev, error), keys, heads, sealed, team_of)
        except _CONTENT_ERRORS:
            async with conn.transaction():  # if even this is refused, the activity fails and says why
                await _write(conn, approvals, _bare_copy(ev, error), keys, heads, sealed, team_of)
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


async def _write(conn: AsyncConnection[Any], approvals: str, ev: ApprovalEvent, keys: AuditKeys | None,
                 heads: dict[str, tuple[int, str]], sealed: bool = True,
                 team_of: Callable[[ApprovalEvent], str | None] | None = None) -> None:
    """Upsert the row and insert the event; when the row moved to this event, seal it over the event's hash.

    Three statements, as many as before the seal: the upsert returns the row as stored (what the
    seal covers, read back as a verifier reads it: no guessing how PostgreSQL normalises JSON),
    and the event's insert carries the seal's update. ``heads``: hashes this transaction wrote,
    so the event after one in the same batch needs no lookup. A retried write changes no row
    (the version guard) and inserts no event, so it seals nothing either. With ``team_of`` (migration 009)
    the row also gets its team's name (kept once known) and ``updated_at``, the event's time: neither is
    sealed (the team is the writing worker's reading of its definitions; the time is on the event).
    """
    table = sql.Identifier(approvals)
    events_table = sql.Identifier(f"{approvals}_events")
    records = team_of is not None  # the schema has Agno's record columns
    upsert = sql.SQL(
        "INSERT INTO {t} (id, run_id, requirement_id, session_id, user_id, agent_name, requirement_kind, approval_type,"
        " status, context, arguments_digest, created_at, resolved_by, resolved_at, resolution, version, team_run_id"
        + (", team_name, updated_at" if records else "") + ")"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s" + (", %s, %s" if records else "") + ")"
        " ON CONFLICT (id) DO UPDATE SET status = excluded.status, context = excluded.context,"
        " arguments_digest = excluded.arguments_digest, resolved_by = excluded.resolved_by,"
        " resolved_at = excluded.resolved_at, resolution = excluded.resolution, version = excluded.version"
        + (", team_name = coalesce({t}.team_name, excluded.team_name), updated_at = excluded.updated_at" if records else "")
        + " WHERE {t}.version < excluded.version RETURNING {sealed}"
    ).format(t=table, sealed=sql.SQL(", ").join(map(sql.Identifier, SEALED)))
    previous = sql.SQL("SELECT hash FROM {e} WHERE approval_id = %s AND seq = %s").format(e=events_table)
    insert = sql.SQL(
        "INSERT INTO {e} (approval_id, seq, kind, payload, at, prev_hash, hash{key_id}) VALUES (%s, %s, %s, %s, %s, %s, %s{k})"
        " ON CONFLICT (approval_id, seq) DO NOTHING RETURNING hash"
    ).format(e=events_table, key_id=sql.SQL(", key_id" if sealed else ""), k=sql.SQL(", %s" if sealed else ""))
    insert_and_seal = sql.SQL("WITH ev AS ({insert}) UPDATE {t} SET seal = %s, seal_key = %s WHERE id = %s"
                              " RETURNING (SELECT hash FROM ev)").format(insert=insert, t=table)
    cursor = await conn.execute(upsert, (
        ev.approval_id, ev.run_id, ev.requirement_id, ev.session_id, ev.user_id, ev.agent_name, ev.requirement_kind,
        ev.approval_type, ev.status, Jsonb(ev.context), ev.arguments_digest, _ts(ev.created_at),
        ev.resolved_by, _ts(ev.resolved_at), Jsonb(ev.resolution) if ev.resolution is not None else None,
        ev.seq, ev.team_run_id, *((team_of(ev), _ts(ev.at)) if team_of is not None else ()),
    ))
    stored = await cursor.fetchone()
    prev_hash = ""
    if ev.seq > 1:
        known = heads.get(ev.approval_id)
        if known is not None and known[0] == ev.seq - 1:
            prev_hash = known[1]
        else:
            row = await (await conn.execute(previous, (ev.approval_id, ev.seq - 1))).fetchone()
            prev_hash = row[0] if row else "missing"
    at = _ts(ev.at)
    assert at is not None
    kid = keys.current if keys is not None else None
    digest = event_hash(prev_hash, ev.approval_id, ev.seq, ev.kind, ev.payload, at, keys, kid)
    values = (ev.approval_id, ev.seq, ev.kind, Jsonb(ev.payload), at, prev_hash, digest, *([kid] if sealed else []))
    if stored is None or not sealed:  # the row is already at this event or past it (a retry): the event alone, if new
        written = await (await conn.execute(insert, values)).fetchone()
    else:
        row_seal = seal(dict(zip(SEALED, stored, strict=True)), digest, keys, kid)
        written = await (await conn.execute(insert_and_seal, (*values, row_seal, kid, ev.approval_id))).fetchone()
    if written is not None and written[0] is not None:
        heads[ev.approval_id] = (ev.seq, digest)
    else:  # the event was there already: the next one looks its hash up
        heads.pop(ev.approval_id, None)
