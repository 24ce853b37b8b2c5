"""Checking the trail offline: each approvals row against its events, each event's link in its
chain, the checkpoints, and each decision's signature against the trusted keys.

What each check finds, and what it cannot:

- **The chain** (every event): a missing event in the middle, a broken ``prev_hash``, an event whose
  content no longer gives its hash. Unkeyed (no audit key when written), whoever can disable the
  trigger can rewrite an event and recompute every hash after it; keyed (HMAC-SHA256 under an audit
  key the database's owner does not hold), they cannot. An unkeyed event after a keyed one in the
  same chain is reported (a chain rewritten without the key).
- **The row** (every approvals row): its ``version`` against the last event (a history whose last
  events were deleted, a row moved back), its seal (every column the mirror wrote and the chain's
  head: any change to status, resolved_by, resolved_at, context and its arguments, resolution...),
  and, where the seal is unkeyed or missing, what the events themselves say: the status their
  kinds give, the decider and time of the last decision, the digest of the arguments. A row with
  no event left, and events whose row is gone, are reported. A row sealed without a key can be
  re-sealed by anyone who recomputes it; a keyed seal cannot be forged, but an old row and its old
  seal, saved by the database's owner, can be put back with the events after it deleted: only a
  checkpoint made after those events finds that.
- **Checkpoints** (``hitl audit checkpoint``): each statement's MAC, its link to the one before
  (a checkpoint deleted from the middle), the heads it recorded (their digests); and every
  approval any checkpoint covered must still have the event it recorded, with that hash: an
  approval deleted with all its events, a history cut short, rolled back or rewritten before the
  checkpoint is found. What was written after the last checkpoint and deleted whole (row and
  events) leaves no trace in the database; deleting the newest checkpoints themselves is found
  only against a statement kept elsewhere (``anchors``: ``hitl audit verify --anchor``).
- **Signatures** (with the decision keys): see :func:`problems`.

Nothing here holds a lock: a verifier reads one snapshot (REPEATABLE READ), while the mirror writes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import Any

from psycopg import Connection, sql

from hitl._wire import digest
from hitl.errors import HitlError
from hitl.policy import SYSTEM_TIMEOUT
from hitl.store.audit import SEALED, AuditKeys, checkpoint_mac, event_hash, heads_digest, row_seal, seal, write_checkpoint

# ---------------------------------------------------------------------------- the trail
STATUS_OF = {"requested": "pending", "confirmed": "approved", "input_provided": "approved", "result_provided": "approved",
             "executed": "approved", "rejected": "rejected", "expired": "expired", "cancelled": "cancelled"}
"""The status an event of each kind leaves its approval in; other kinds (refused, changed, approval_added,
escalated, reminded) leave it as it was."""
DECIDED = {"confirmed", "input_provided", "result_provided", "executed", "rejected", "expired"}


@dataclass
class TrailReport:
    """What ``hitl audit verify`` found: the problems (empty when the trail verifies) and what it read."""

    problems: list[dict[str, Any]] = field(default_factory=list)
    approvals: int = 0
    events: int = 0
    keyed_events: int = 0
    """Events whose hash is keyed (HMAC under an audit key); the rest are plain sha256."""
    checkpoints: int = 0
    latest_checkpoint: dict[str, Any] | None = None
    """The newest checkpoint's statement, to compare with one kept elsewhere."""
    unheld: set[str] = field(default_factory=set)
    """Audit key ids the trail names and the verifier lacks: what they key was not checked."""

    def add(self, approval_id: str | None, seq: int | None, kind: str, reason: str) -> None:
        self.problems.append({"approval_id": approval_id, "seq": seq, "kind": kind, "reason": reason})


def chain_break(events: Iterable[Mapping[str, Any]], keys: AuditKeys | None, unheld: set[str] | None = None
                ) -> tuple[int, str] | None:
    """The first broken link of one approval's events (oldest first), as (seq, why), or None.

    An event keyed with a key ``keys`` does not hold is skipped and its key id added to ``unheld``
    (None: reported as a break); its successors still chain to its hash as stored.
    """
    seq, prev_hash, keyed = 0, "", False
    for e in events:
        kid = e.get("key_id")
        if e["seq"] != seq + 1:
            return e["seq"], f"event {seq + 1} is missing"
        if e["prev_hash"] != prev_hash:
            return e["seq"], "prev_hash does not match the previous event"
        if kid is None and keyed:
            return e["seq"], "the hash is not keyed, though an earlier event's is: rewritten without the audit key?"
        if kid is not None and (keys is None or kid not in keys.keys):
            if unheld is None:
                return e["seq"], f"hashed with audit key {kid!r}, which is not given (HITL_AUDIT_KEYS)"
            unheld.add(kid)
        elif e["hash"] != event_hash(e["prev_hash"], e["approval_id"], e["seq"], e["kind"], e["payload"], e["at"],
                                     keys, kid):
            return e["seq"], "hash does not match the event's content"
        seq, prev_hash, keyed = e["seq"], e["hash"], keyed or kid is not None
    return None


def signed_rows(conn: Connection[Any], approvals: str, approval_id: str | None) -> Iterator[dict[str, Any]]:
    """The trail's events joined with their approval (one approval's, or all), for checking decisions'
    signatures (``hitl.security.signed_trail``): read one by one as they are checked, while ``conn`` is open."""
    query = sql.SQL("SELECT e.approval_id, e.seq, e.kind, e.payload, a.run_id, a.requirement_id, a.team_run_id, a.context"
                    " FROM {e} e JOIN {a} a ON a.id = e.approval_id").format(e=sql.Identifier(f"{approvals}_events"),
                                                                           a=sql.Identifier(approvals))
    if approval_id is not None:
        query += sql.SQL(" WHERE e.approval_id = %s")
    rows = conn.execute(query + sql.SQL(" ORDER BY e.approval_id, e.seq"), [approval_id] if approval_id else [])
    return iter(rows)


def first_break(conn: Connection[Any], approvals: str, keys: AuditKeys | None, approval_id: str | None
                ) -> dict[str, Any] | None:
    """The first broken link (:func:`chain_break`) of one approval's events, or of all, or None."""
    query = sql.SQL("SELECT approval_id, seq, kind, payload, at, prev_hash, hash, key_id FROM {}").format(
        sql.Identifier(f"{approvals}_events"))
    if approval_id is not None:
        query += sql.SQL(" WHERE approval_id = %s")
    rows = conn.execute(query + sql.SQL(" ORDER BY approval_id, seq"), [approval_id] if approval_id is not None else [])
    for aid, events in groupby(rows, key=itemgetter("approval_id")):
        broken = chain_break(list(events), keys)
        if broken is not None:
            return {"approval_id": aid, "seq": broken[0], "reason": broken[1]}
    return None


_CHECKPOINT_LOCK = 0x68697463  # 'hitc': one checkpoint of a table at a time (the mirror never takes it)


def verify(conn: Connection[Any], approvals: str, keys: AuditKeys | None, *, allow_unkeyed: bool = False,
           anchors: Iterable[Mapping[str, Any]] = ()) -> TrailReport:
    """:func:`trail` in a read-only snapshot of its own on ``conn`` (an autocommit dict-row connection)."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return trail(conn, approvals, keys, allow_unkeyed=allow_unkeyed, anchors=anchors)


def checkpoint(conn: Connection[Any], approvals: str, keys: AuditKeys | None, *, adopt_unkeyed: bool = False
               ) -> dict[str, Any]:
    """Verify and write a checkpoint in one snapshot, one checkpoint of a table at a time (an advisory lock
    only checkpoints take). Unkeyed events and rows are vouched for as they stand only with
    ``adopt_unkeyed`` (once, as a key is turned on, for the trail written before it): otherwise a table
    owner without the key could rewrite an approval unkeyed and have the next scheduled checkpoint vouch
    for it. Raises HitlError, recording nothing, if the trail does not verify."""
    conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (_CHECKPOINT_LOCK, approvals))
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            report = trail(conn, approvals, keys, allow_unkeyed=adopt_unkeyed)
            if report.problems:
                raise HitlError(f"{approvals}: the trail does not verify ({len(report.problems)} problem(s); "
                                "hitl audit verify lists them): no checkpoint made")
            return write_checkpoint(conn, approvals, keys)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_CHECKPOINT_LOCK, approvals))


def trail(conn: Connection[Any], approvals: str, keys: AuditKeys | None, *, allow_unkeyed: bool = False,
          anchors: Iterable[Mapping[str, Any]] = ()) -> TrailReport:
    """Check every approvals row, every event and every checkpoint of ``approvals`` (see the module).

    ``conn``: a dict-row connection in a transaction of one snapshot (REPEATABLE READ), so that the
    mirror's writes meanwhile are seen whole or not at all. Rows, events and checkpointed heads are
    streamed, one approval at a time. With ``keys``, every event and row must be keyed or covered,
    as it is, by a keyed checkpoint (a trail from before the key), unless ``allow_unkeyed``.
    ``anchors``: checkpoint statements kept elsewhere, each of which must still be on the trail.
    """
    names = {"t": sql.Identifier(approvals), "e": sql.Identifier(f"{approvals}_events"),
             "h": sql.Identifier(f"{approvals}_checkpoint_heads")}
    report = TrailReport()
    trusted = _check_checkpoints(conn, approvals, keys, report, list(anchors))
    require = keys is not None and not allow_unkeyed
    with conn.cursor(name="hitl_rows") as rows, conn.cursor(name="hitl_events") as events, \
            conn.cursor(name="hitl_pins") as pins:
        rows.execute(sql.SQL('SELECT {c}, seal, seal_key FROM {t} ORDER BY id COLLATE "C"').format(
            c=sql.SQL(", ").join(map(sql.Identifier, SEALED)), **names))
        events.execute(sql.SQL('SELECT approval_id, seq, kind, payload, at, prev_hash, hash, key_id FROM {e}'
                               ' ORDER BY approval_id COLLATE "C", seq').format(**names))
        pins.execute(sql.SQL('SELECT * FROM (SELECT DISTINCT ON (approval_id) * FROM {h} ORDER BY approval_id,'
                             ' checkpoint DESC) p ORDER BY approval_id COLLATE "C"').format(**names))
        grouped = ((aid, list(g)) for aid, g in groupby(events, key=itemgetter("approval_id")))
        for aid, row, history, pin in _merged(((r["id"], r) for r in rows), grouped, ((p["approval_id"], p) for p in pins)):
            report.approvals += row is not None
            report.events += len(history or [])
            report.keyed_events += sum(ev["key_id"] is not None for ev in history or [])
            _check_approval(report, aid, row, history or [], pin, pin is not None and pin["checkpoint"] in trusted,
                            keys, require)
    if report.unheld:
        report.add(None, None, "key", f"hashes and seals keyed with audit key(s) {', '.join(sorted(report.unheld))} were "
                   "not checked: HITL_AUDIT_KEYS does not hold them")
    return report


def _merged(*streams: Iterator[tuple[str, Any]]) -> Iterator[tuple[Any, ...]]:
    """Each approval id with its item of each stream (None where a stream has none); every stream in ("C") id order."""
    heads = [next(s, None) for s in streams]
    while any(h is not None for h in heads):
        key = min(h[0] for h in heads if h is not None)
        items = []
        for i, h in enumerate(heads):
            items.append(h[1] if h is not None and h[0] == key else None)
            if h is not None and h[0] == key:
                heads[i] = next(streams[i], None)
        yield key, *items


def _check_approval(report: TrailReport, aid: str, row: dict[str, Any] | None, history: list[dict[str, Any]],
                    pin: dict[str, Any] | None, pin_trusted: bool, keys: AuditKeys | None, require: bool) -> None:
    broken = chain_break(history, keys, report.unheld)
    if broken is not None:
        report.add(aid, broken[0], "chain", broken[1])
    covered = _check_pin(report, aid, row, history, pin) if pin is not None else 0
    covered = covered if pin_trusted else 0
    if require and (unkeyed := [ev["seq"] for ev in history if ev["key_id"] is None and ev["seq"] > covered]):
        report.add(aid, unkeyed[0], "key", f"{len(unkeyed)} event(s) from event {unkeyed[0]} on are not keyed, and no "
                   "keyed checkpoint covers them")
    if row is None:
        if history:
            report.add(aid, history[0]["seq"], "row", "its events are on the trail, but its approvals row is gone")
        return
    version = row["version"]
    if not history:
        report.add(aid, version, "history", f"no event is left of its history (the row is at event {version})")
        return
    last = history[-1]["seq"]
    if version > last:
        report.add(aid, last, "history", f"the row is at event {version}, but the history ends at event {last}: "
                   "the events after it are gone")
    elif version < last:
        report.add(aid, version, "row", f"the row is at event {version}, but the history goes on to event {last}")
    keyed_seal = _seal_holds(report, aid, row, history, keys)
    if not keyed_seal:
        _check_fields(report, aid, row, [ev for ev in history if ev["seq"] <= version])
        if require and covered != version:
            report.add(aid, version, "key", "the row has no keyed seal that holds, and no keyed checkpoint covers it as it is")


def _check_pin(report: TrailReport, aid: str, row: dict[str, Any] | None, history: list[dict[str, Any]],
               pin: dict[str, Any]) -> int:
    """The approval against the head a checkpoint recorded; the seq it covers (0 if it no longer holds)."""
    where = f"checkpoint {pin['checkpoint']} recorded it at event {pin['seq']}"
    event = next((ev for ev in history if ev["seq"] == pin["seq"]), None)
    if not history:
        report.add(aid, pin["seq"], "checkpoint", f"{where}; {'its events are' if row is not None else 'it is'} gone")
    elif event is None:
        report.add(aid, pin["seq"], "checkpoint", f"{where}; its history now ends at event {history[-1]['seq']}")
    elif event["hash"] != pin["hash"]:
        report.add(aid, pin["seq"], "checkpoint", f"{where}; that event's hash is not the one recorded (rewritten)")
    elif row is not None and row["version"] == pin["seq"] and row_seal(row, event["hash"]) != pin["row_seal"]:
        report.add(aid, pin["seq"], "checkpoint", f"{where}; the row is not as it recorded (changed since)")
    else:
        return int(pin["seq"])
    return 0


def _seal_holds(report: TrailReport, aid: str, row: dict[str, Any], history: list[dict[str, Any]],
                keys: AuditKeys | None) -> bool:
    """Whether the row carries a keyed seal that holds (then its fields need no other check); reports a broken one."""
    version, kid = row["version"], row["seal_key"]
    if any(ev["key_id"] is not None for ev in history) and (row["seal"] is None or kid is None):
        report.add(aid, version, "seal", "the row has no keyed seal, though its events are keyed: re-sealed or "
                   "unsealed without the audit key?")
    head = next((ev["hash"] for ev in history if ev["seq"] == version), None)
    if row["seal"] is None or head is None:  # never sealed, or the event it sealed is gone (a history cut short)
        return False
    if kid is not None and (keys is None or kid not in keys.keys):
        report.unheld.add(kid)
        return False
    if seal(row, head, keys, kid) != row["seal"]:
        report.add(aid, version, "seal", f"the row is not what the mirror wrote with event {version}, or that "
                   "event's hash is not: changed behind the mirror")
        return False
    return kid is not None


def _check_fields(report: TrailReport, aid: str, row: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """The columns the events themselves determine: for rows without a keyed seal that holds."""
    if row["id"] != f"{row['run_id']}/{row['requirement_id']}":
        report.add(aid, row["version"], "row", f"run_id {row['run_id']!r} and requirement_id "
                   f"{row['requirement_id']!r} do not make its id")
    status = next(((ev, STATUS_OF[ev["kind"]]) for ev in reversed(history) if ev["kind"] in STATUS_OF), None)
    if status is not None and row["status"] != status[1]:
        report.add(aid, status[0]["seq"], "row", f"status is {row['status']!r}, but event {status[0]['seq']} "
                   f"({status[0]['kind']}) makes it {status[1]!r}")
    decision = next((ev for ev in reversed(history) if ev["kind"] in DECIDED), None)
    if decision is None:
        if row["resolved_by"] is not None or row["resolved_at"] is not None:
            report.add(aid, row["version"], "row", f"resolved_by {row['resolved_by']!r} and resolved_at are set, "
                       "but no event records a decision")
    elif "quarantined" not in (decision["payload"] or {}):  # a quarantined copy may have lost the decider
        payload, seq, kind = decision["payload"] or {}, decision["seq"], decision["kind"]
        by = payload["resolved_by"] if "resolved_by" in payload else SYSTEM_TIMEOUT \
            if payload.get("via") == "deadline" else "policy:audit" if kind == "executed" else row["resolved_by"]
        if row["resolved_by"] != by:
            report.add(aid, seq, "row", f"resolved_by is {row['resolved_by']!r}, but event {seq} ({kind}) says {by!r}")
        at = math.floor(decision["at"].timestamp())  # the run's decision time, in whole seconds
        if row["resolved_at"] is None or row["resolved_at"].timestamp() != at:
            report.add(aid, seq, "row", f"resolved_at is {row['resolved_at']}, but event {seq} ({kind}) was at "
                       f"{decision['at']}")
    arguments = (row["context"] or {}).get("arguments")
    quarantined = any("quarantined" in (ev["payload"] or {}) for ev in history)
    if isinstance(arguments, dict) and not quarantined and row["arguments_digest"] not in _digests(arguments):
        report.add(aid, row["version"], "row", "arguments_digest is not the digest of context.arguments: "
                   "the arguments or their digest were changed")


def _digests(arguments: dict[str, Any]) -> set[str]:
    """The digest of the arguments, and of them as the run had them where PostgreSQL's JSON turned a
    whole float of 16 digits or more (1e16) into an integer."""
    def floats(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**16:
            return float(value)
        if isinstance(value, dict):
            return {k: floats(v) for k, v in value.items()}
        return [floats(v) for v in value] if isinstance(value, list) else value
    return {digest(arguments), digest(floats(arguments))}


# ---------------------------------------------------------------------------- checkpoints
def _check_checkpoints(conn: Connection[Any], approvals: str, keys: AuditKeys | None, report: TrailReport,
                       anchors: list[Mapping[str, Any]]) -> set[int]:
    """Each checkpoint's MAC, its link to the one before, its recorded heads; the anchors. Returns the
    checkpoints that are keyed and hold (their heads may vouch for unkeyed events and rows)."""
    cp, heads = sql.Identifier(f"{approvals}_checkpoints"), sql.Identifier(f"{approvals}_checkpoint_heads")
    prev, held, trusted = "", {}, set()
    with conn.cursor(name="hitl_checkpoints") as statements, conn.cursor(name="hitl_heads") as recorded:
        statements.execute(sql.SQL("SELECT n, statement, key_id, mac FROM {cp} ORDER BY n").format(cp=cp))
        recorded.execute(sql.SQL('SELECT checkpoint, approval_id, seq, hash, row_seal FROM {h} ORDER BY checkpoint,'
                                 ' approval_id COLLATE "C"').format(h=heads))
        by_checkpoint = ((n, [(h["approval_id"], h["seq"], h["hash"], h["row_seal"]) for h in g])
                         for n, g in groupby(recorded, key=itemgetter("checkpoint")))
        for n, c, rows in _merged(((c["n"], c) for c in statements), by_checkpoint):
            if c is None:
                report.add(None, None, "checkpoint", f"heads recorded for checkpoint {n}, which is gone")
                continue
            report.checkpoints += 1
            kid, where, stated = c["key_id"], f"checkpoint {n}", _statement(c["statement"])
            held[n] = c["mac"]
            report.latest_checkpoint = {"n": n, "statement": stated, "key_id": kid, "mac": c["mac"]}
            problems = len(report.problems)
            if kid is not None and (keys is None or kid not in keys.keys):
                report.unheld.add(kid)
            elif checkpoint_mac(c["statement"], keys, kid) != c["mac"]:
                report.add(None, None, "checkpoint", f"{where}: its statement does not give its MAC (changed?)")
            if (stated.get("n"), stated.get("table"), stated.get("key_id")) != (n, approvals, kid):
                report.add(None, None, "checkpoint", f"{where}: its statement is of another checkpoint or table")
            if stated.get("prev") != prev:
                report.add(None, None, "checkpoint", f"{where}: it does not follow the checkpoint before it "
                           f"(checkpoint {n - 1} changed or gone)")
            if heads_digest(rows or []) != (stated.get("changed"), stated.get("delta")):
                report.add(None, None, "checkpoint", f"{where}: its recorded heads are not the ones it stated")
            if kid is not None and kid not in report.unheld and len(report.problems) == problems:
                trusted.add(n)
            prev = c["mac"]
    for anchor in anchors:
        n = anchor.get("n")
        if held.get(n) != anchor.get("mac"):
            report.add(None, None, "checkpoint", f"checkpoint {n}, kept elsewhere, is {'changed' if n in held else 'gone'}"
                       " on the trail: the trail was rolled back past it?")
    if report.latest_checkpoint is not None:
        _check_accumulated(conn, approvals, report)
    return trusted


def _statement(text: str) -> dict[str, Any]:
    try:
        stated = json.loads(text)
    except ValueError:
        return {}
    return stated if isinstance(stated, dict) else {}


def _check_accumulated(conn: Connection[Any], approvals: str, report: TrailReport) -> None:
    """The newest statement's count and digest are those of every head recorded up to it."""
    latest = report.latest_checkpoint
    assert latest is not None
    with conn.cursor(name="hitl_accumulated") as cursor:
        cursor.execute(sql.SQL('SELECT * FROM (SELECT DISTINCT ON (approval_id) approval_id, seq, hash, row_seal FROM {h}'
                               ' ORDER BY approval_id, checkpoint DESC) p ORDER BY approval_id COLLATE "C"')
                       .format(h=sql.Identifier(f"{approvals}_checkpoint_heads")))
        found = heads_digest((r["approval_id"], r["seq"], r["hash"], r["row_seal"]) for r in cursor)
    if found != (latest["statement"].get("approvals"), latest["statement"].get("digest")):
        report.add(None, None, "checkpoint", f"checkpoint {latest['n']}: the heads recorded up to it are not the "
                   "approvals and digest it stated")
