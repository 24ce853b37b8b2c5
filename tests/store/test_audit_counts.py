"""Approval counts at size: the maintained counts equal count(*) after every kind of write, and an
estimate always says it is one. Real PostgreSQL; writes go through the mirror's own path."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from hitl import PostgresDb
from hitl._wire import ApprovalEvent
from hitl.store import counts as _counts
from hitl.store import schema

DAY = 86400.0
T0 = datetime(2026, 11, 3, 7, 30, tzinfo=UTC).timestamp()  # mid-morning: ranges cut days in two
TOOLS, AGENTS, KINDS, TYPES = ["transfer", "deploy", None], ["alpha", "beta"], ["confirmation", "user_input"], ["required", "audit"]


def event(i: int, seq: int = 1, status: str = "pending", **changes) -> ApprovalEvent:
    """Approval ``i``'s event ``seq``: its dimensions vary with i, its created_at spans ~8 days."""
    tool = TOOLS[i % 3]
    fields = dict(
        approval_id=f"run-{i}/req-1", seq=seq, kind="requested" if seq == 1 else status, at=T0 + i * 3000 + seq,
        run_id=f"run-{i}", requirement_id="req-1", agent_name=AGENTS[i % 2], requirement_kind=KINDS[i % 4 // 2],
        approval_type=TYPES[i % 5 // 4], status=status, context={"tool_name": tool} if tool else {},
        arguments_digest="d", created_at=T0 + i * 3000, user_id=f"user-{i % 3}", resolved_by=None,
    )
    return ApprovalEvent(**{**fields, **changes})


def exact(db: PostgresDb, where: str = "TRUE", *params) -> int:
    with psycopg.connect(db.db_url, autocommit=True) as conn:
        return conn.execute(f"SELECT count(*) FROM {db.approvals_table} WHERE {where}", params).fetchone()[0]


def deltas(db: PostgresDb) -> int:
    """Delta rows not yet compacted."""
    with psycopg.connect(db.db_url, autocommit=True) as conn:
        return conn.execute(f"SELECT count(*) FROM {db.approvals_table}_count_deltas").fetchone()[0]


QUERIES = [  # (status, filters), and the same condition in SQL
    (None, {}, "TRUE"),
    ("pending", {}, "status = 'pending'"),
    ("approved", {}, "status = 'approved'"),
    (None, {"tool_name": "transfer"}, "tool_name = 'transfer'"),
    ("rejected", {"agent_name": "beta"}, "status = 'rejected' AND agent_name = 'beta'"),
    (None, {"agent_id": "alpha", "pause_type": "user_input"}, "agent_name = 'alpha' AND requirement_kind = 'user_input'"),
    ("approved", {"approval_type": "audit", "tool_name": "deploy"},
     "status = 'approved' AND approval_type = 'audit' AND tool_name = 'deploy'"),
    (None, {"month": "2026-11"}, "created_at >= '2026-11-01Z' AND created_at < '2026-12-01Z'"),
    (None, {"month": "2026-10"}, "created_at < '2026-11-01Z'"),
]



def _count(db: PostgresDb, *args: Any, **kwargs: Any) -> Any:
    """count_approvals over every row (audit approvals still waiting included: the counts keep them too)."""
    return db.count_approvals(*args, include_undecided_audit=True, **kwargs)


def _list(db: PostgresDb, *args: Any, **kwargs: Any) -> Any:
    return db.get_approvals(*args, include_undecided_audit=True, **kwargs)

def assert_counts_exact(db: PostgresDb) -> None:
    """Every counted filter, and some time ranges, against count(*)."""
    for status, filters, where in QUERIES:
        total = _count(db, status, filters)
        assert (total, total.estimated) == (exact(db, where), False), (status, filters)
        assert _list(db, status, filters, limit=1)[1] == total
    rng = random.Random(7)
    for _ in range(25):
        low = T0 + rng.uniform(-DAY, 9 * DAY)
        high = low + rng.choice([0, 600, DAY / 3, DAY, 2.5 * DAY, 6 * DAY])
        total = _count(db, "approved", {"created_at_gte": low, "created_at_lte": high, "agent_name": "alpha"})
        want = exact(db, "status = 'approved' AND agent_name = 'alpha' AND created_at >= to_timestamp(%s)"
                     " AND created_at <= to_timestamp(%s)", low, high)
        assert (total, total.estimated) == (want, False), (low, high)


async def test_counts_follow_inserts_and_every_status_transition(db):
    """New approvals count under pending; a decision moves each to its new status, in the same transaction."""
    await db.write_events([event(i) for i in range(60)])
    assert _count(db, "pending") == 60 and _count(db) == 60
    assert_counts_exact(db)
    finals = itertools.cycle(["approved", "rejected", "expired", "cancelled", "approved"])
    await db.write_events([event(i, 2, next(finals), resolved_by="alice") for i in range(0, 60, 2)])
    assert _count(db, "pending") == 30 and _count(db, "approved") == 12
    assert_counts_exact(db)
    # A quorum's confirmation or a reassignment is a new version with the same key: no delta.
    before = deltas(db)
    await db.write_events([event(1, 2, "pending", context={"tool_name": "deploy", "approvals": ["bob"]})])
    assert deltas(db) == before
    assert_counts_exact(db)


async def test_retried_and_late_writes_change_no_count(db):
    """A retried mirror activity, or an old event written after a newer one, moves no count."""
    await db.write_events([event(i) for i in range(20)])
    await db.write_events([event(i, 2, "approved") for i in range(10)])
    before = deltas(db)
    for _ in range(3):  # the activity retried, whole
        await db.write_events([event(i) for i in range(20)] + [event(i, 2, "approved") for i in range(10)])
    await db.write_events([event(3)])  # a late retry of event 1 after event 2
    assert deltas(db) == before
    assert _count(db, "approved") == 10 and _count(db, "pending") == 10
    assert_counts_exact(db)


async def test_concurrent_writers_and_compactions_keep_counts_exact(db):
    """Many writers at once (the pool's eight connections), with compactions running between them."""
    async def writer(first: int) -> None:
        for i in range(first, first + 15):
            await db.write_events([event(i)])
            if i % 3:
                await db.write_events([event(i, 2, "approved" if i % 2 else "rejected")])

    async def compactor() -> None:
        for _ in range(10):
            await asyncio.to_thread(db.compact_counts)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(writer(k * 15) for k in range(8)), compactor(), compactor())
    assert _count(db) == 120 and not _count(db).estimated
    assert_counts_exact(db)
    assert db.compact_counts() and deltas(db) == 0
    assert_counts_exact(db)


async def test_the_mirror_compacts_every_so_many_writes(db, monkeypatch):
    """Deltas do not pile up: every COMPACT_EVERY-th write folds them into one row per key."""
    monkeypatch.setattr(_counts, "COMPACT_EVERY", 5)
    for i in range(10):
        await db.write_events([event(i)])
    assert deltas(db) == 0
    assert_counts_exact(db)


async def test_a_quarantined_event_is_counted_once(db):
    """An event PostgreSQL refuses is written as a storable copy: the failed attempt's deltas roll back with it."""
    bad = event(5, context={"tool_name": "transfer", "note": "nul\x00here"})
    assert await db.write_events([event(4), bad, event(6)]) == ["run-5/req-1#1"]
    assert _count(db) == 3 and _count(db, tool_name="transfer") == 2 == exact(db, "tool_name = 'transfer'")
    assert_counts_exact(db)


async def test_deleted_and_truncated_approvals_leave_the_counts(db):
    """A retention job's DELETE, or a TRUNCATE, takes the counts with it."""
    await db.write_events([event(i) for i in range(12)])
    with psycopg.connect(db.db_url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {db.approvals_table}_events DISABLE TRIGGER USER")
        conn.execute(f"DELETE FROM {db.approvals_table}_events WHERE approval_id IN ('run-1/req-1', 'run-2/req-1')")
        conn.execute(f"DELETE FROM {db.approvals_table} WHERE id IN ('run-1/req-1', 'run-2/req-1')")
        assert _count(db) == 10
        assert_counts_exact(db)
        conn.execute(f"TRUNCATE {db.approvals_table}_events, {db.approvals_table}")
        conn.execute(f"ALTER TABLE {db.approvals_table}_events ENABLE TRIGGER USER")
    assert _count(db) == 0 and _count(db, tool_name="transfer") == 0


async def test_migration_backfills_an_existing_trail(database_url, monkeypatch):
    """A database migrated before counts existed gets them, equal to count(*), when it migrates."""
    import uuid

    old = PostgresDb(database_url, approvals_table=f"approvals_{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:5])
    old.migrate()
    await old.write_events([event(i) for i in range(30)] + [event(i, 2, "approved") for i in range(0, 30, 3)])
    await old.aclose()
    old.close()
    monkeypatch.undo()
    upgraded = PostgresDb(database_url, approvals_table=old.approvals_table)
    upgraded.migrate()
    assert upgraded.count_approvals("approved") == 10 and deltas(upgraded) == 0
    assert_counts_exact(upgraded)
    await upgraded.aclose()
    upgraded.close()


async def test_a_count_past_the_bound_is_an_estimate_and_says_so(db, monkeypatch):
    """Filters the counts do not hold are counted up to EXACT_UP_TO rows; past it the total is flagged."""
    await db.write_events([event(i) for i in range(30)])
    monkeypatch.setattr(_counts, "EXACT_UP_TO", 5)
    total = _count(db, user_id="user-1")  # 10 match
    assert total.estimated and total >= 6
    _, listed = _list(db, user_id="user-1")
    assert listed.estimated and isinstance(listed, int)
    assert (_count(db, user_id="user-1", exact=True), _list(db, user_id="user-1", exact_count=True)[1]) == (10, 10)
    assert not _count(db, user_id="user-1", exact=True).estimated
    small = _count(db, run_id="run-4")
    assert (small, small.estimated) == (1, False)
    held = _count(db, "pending", {"tool_name": "transfer"})  # from the counts: exact at any size
    assert (held, held.estimated) == (10, False)


async def test_rest_listing_and_count_carry_the_estimate_flag(db, service, monkeypatch):
    """GET /approvals' meta and GET /approvals/count say whether the total is exact."""
    await db.write_events([event(i) for i in range(30)])
    monkeypatch.setattr(_counts, "EXACT_UP_TO", 5)  # the service runs in this process
    async with service.client(service.token("auditor", "approvals:read")) as http:
        meta = (await http.get("/approvals", params={"tool_name": "transfer", "limit": 3})).json()["meta"]
        assert (meta["total_count"], meta["total_count_estimated"]) == (10, False)
        meta = (await http.get("/approvals", params={"user_id": "user-1", "limit": 3})).json()["meta"]
        assert meta["total_count_estimated"] is True and meta["total_count"] >= 6
        count = (await http.get("/approvals/count", params={"user_id": "user-1"})).json()
        assert count["estimated"] is True
        count = (await http.get("/approvals/count", params={"agent_name": "alpha"})).json()
        assert count == {"count": 15}  # exact: the body it always was


@pytest.mark.parametrize(("bound", "matching"), [
    ({"created_at_gte": datetime(9999, 12, 31, 1, tzinfo=UTC)}, 0),
    ({"created_at_lte": datetime.max.replace(tzinfo=UTC)}, 4),
])
async def test_ranges_at_the_ends_of_the_calendar_are_counted(db, bound, matching):
    """A range whose whole days the calendar cannot hold (past 9999-12-31) is counted in the table, exactly."""
    await db.write_events([event(i) for i in range(4)])
    total = _count(db, filters=bound)
    assert (total, total.estimated) == (matching, False)
