"""The audit trail at size: queries over one million approval records, and what mirroring costs.

    python -m bench.approvals [--rows 1000000] [--repeat 30] [--pauses 100] [--writes 300]

Queries: each documented filter of get_approvals (a page of 100 and its count), some combinations,
count_approvals and get_pending_approval_count, on a seeded table (PostgreSQL from DATABASE_URL,
else embedded); raw figures saved as bench/data/approvals.json. Write path: one mirror write
(an approval requested, then decided) with the count triggers on and off, alone and with 8
writers at once. Pause latency: agent.arun() until paused, with and without db=, on one dev
server and worker, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import tempfile
import time
from pathlib import Path

import psycopg

from bench import samples
from bench.common import pct, stack, summary
from hitl import Agent, OpenAIChat, PostgresDb
from hitl._wire import ApprovalEvent
from hitl.dev import stack as devstack

TABLE = "bench_approvals"
SEED = """
INSERT INTO {t} (id, run_id, requirement_id, session_id, user_id, agent_name, requirement_kind, approval_type,
                 status, context, arguments_digest, created_at, resolved_by, resolved_at, resolution, version, team_run_id)
SELECT 'run-' || g || '/req-1-call_0_0', 'run-' || g, 'req-1-call_0_0', 'session-' || (g %% 50000), 'user-' || (g %% 1000),
       'agent-' || (g %% 10), CASE WHEN g %% 10 = 9 THEN 'user_input' ELSE 'confirmation' END,
       CASE WHEN g %% 20 = 11 THEN 'audit' ELSE 'required' END,
       CASE WHEN g %% 100 = 0 THEN 'pending' WHEN g %% 4 = 0 THEN 'rejected' WHEN g %% 25 = 1 THEN 'expired'
            ELSE 'approved' END,
       jsonb_build_object('tool_name', 'tool_' || (g %% 20), 'arguments', jsonb_build_object('amount', g %% 5000)),
       md5(g::text), now() - (g %% 525600) * interval '1 minute',
       CASE WHEN g %% 100 = 0 THEN NULL ELSE 'approver-' || (g %% 100) END,
       CASE WHEN g %% 100 = 0 THEN NULL ELSE now() - (g %% 525600) * interval '1 minute' + (g %% 3600) * interval '1 second' END,
       NULL, 2, CASE WHEN g %% 50 = 7 THEN 'team-' || (g %% 5000) END
FROM generate_series(1, %s) AS g
"""


def seed(db: PostgresDb, rows: int) -> None:
    with psycopg.connect(db.db_url, autocommit=True) as conn:
        count = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]  # noqa: S608 - a constant
        if count == rows:
            return
        # A benchmark's own table: lift the append-only guard to start it afresh.
        conn.execute(f"ALTER TABLE {TABLE}_events DISABLE TRIGGER USER")
        conn.execute(f"TRUNCATE {TABLE}_events, {TABLE}")
        conn.execute(f"ALTER TABLE {TABLE}_events ENABLE TRIGGER USER")
        conn.execute(SEED.replace("{t}", TABLE), (rows,))  # through the count triggers, as the mirror's writes
    db.compact_counts()  # what the mirror does every few hundred writes
    with psycopg.connect(db.db_url, autocommit=True) as conn:
        for table in (TABLE, f"{TABLE}_counts", f"{TABLE}_count_deltas"):
            conn.execute(f"VACUUM ANALYZE {table}")  # what autovacuum would have done by now


def time_queries(db: PostgresDb, repeat: int) -> dict[str, dict[str, object]]:
    """p50/p99 of each query (a page of 100 and its total), printed with the total and whether it is exact."""
    month = time.strftime("%Y-%m")
    last_month = time.strftime("%Y-%m", time.gmtime(time.time() - 32 * 86400))
    now = time.time()
    cases = {
        "get_approvals() (no filter)": lambda: db.get_approvals(),
        "get_approvals(status='pending')": lambda: db.get_approvals(status="pending"),
        "get_approvals(status='approved')": lambda: db.get_approvals(status="approved"),
        "filters run_id": lambda: db.get_approvals(filters={"run_id": "run-424242"}),
        "filters team_run_id": lambda: db.get_approvals(filters={"team_run_id": "team-1207"}),
        "filters tool_name": lambda: db.get_approvals(filters={"tool_name": "tool_7"}),
        "filters agent_name": lambda: db.get_approvals(filters={"agent_name": "agent-3"}),
        "filters resolved_by": lambda: db.get_approvals(filters={"resolved_by": "approver-42"}),
        "filters created_at last 7 days": lambda: db.get_approvals(
            filters={"created_at_gte": now - 7 * 86400, "created_at_lte": now}),
        "filters created_at_gte 90 days ago": lambda: db.get_approvals(filters={"created_at_gte": now - 90 * 86400}),
        f"filters month={month}": lambda: db.get_approvals(filters={"month": month}),
        f"filters month={last_month}": lambda: db.get_approvals(filters={"month": last_month}),
        "user_id= (Agno keyword)": lambda: db.get_approvals(user_id="user-7"),
        "session_id= (Agno keyword)": lambda: db.get_approvals(session_id="session-4242"),
        "agent_id= (Agno keyword)": lambda: db.get_approvals(agent_id="agent-3"),
        "approval_type='audit' (Agno keyword)": lambda: db.get_approvals(approval_type="audit"),
        "pause_type='user_input' (Agno keyword)": lambda: db.get_approvals(pause_type="user_input"),
        "status='approved' + tool_name + month": lambda: db.get_approvals(
            status="approved", filters={"tool_name": "tool_7", "month": last_month}),
        "status='rejected' + user_id": lambda: db.get_approvals(status="rejected", user_id="user-8"),
        "status='approved' + resolved_by + 90 days": lambda: db.get_approvals(
            status="approved", filters={"resolved_by": "approver-42", "created_at_gte": now - 90 * 86400}),
        "count_approvals(status='approved')": lambda: ([], db.count_approvals(status="approved")),
        "get_pending_approval_count()": lambda: ([], db.get_pending_approval_count()),
    }
    figures: dict[str, dict[str, object]] = {}
    for name, query in cases.items():
        _, total = query()  # warm
        ms = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            query()
            ms.append((time.perf_counter() - t0) * 1000)
        exactness = "estimated" if getattr(total, "estimated", False) else "exact"
        print(f"{summary(name, ms)}  total {int(total):,} ({exactness})")
        figures[name] = {"p50": pct(ms, 50), "p99": pct(ms, 99), "samples_ms": ms, "total": int(total),
                         "estimated": exactness == "estimated"}
    return figures


def _write(i: int, seq: int) -> ApprovalEvent:
    created = time.time()
    return ApprovalEvent(
        approval_id=f"write-{i}/req-1", seq=seq, kind="requested" if seq == 1 else "confirmed", at=created, run_id=f"write-{i}",
        requirement_id="req-1", agent_name="agent-1", requirement_kind="confirmation", approval_type="required",
        status="pending" if seq == 1 else "approved", context={"tool_name": "tool_1", "arguments": {"amount": i}},
        arguments_digest="d", created_at=created, resolved_by=None if seq == 1 else "approver-1")


async def write_cost(db: PostgresDb, writes: int) -> dict[str, dict[str, float]]:
    """One mirror write (requested, then decided: two events, two transactions) with the count triggers on
    and off, interleaved; then 8 writers at once, each way. The trail's other triggers stay."""
    table = db.approvals_table
    triggers = [f"{table}_counts_insert_delete", f"{table}_counts_update"]

    def switch(on: bool, empty: bool = False) -> None:
        with psycopg.connect(db.db_url, autocommit=True) as conn:
            if empty:  # a benchmark's own table: lift the append-only guard to start it afresh
                conn.execute(f"ALTER TABLE {table}_events DISABLE TRIGGER USER")
                conn.execute(f"TRUNCATE {table}_events, {table}")
                conn.execute(f"ALTER TABLE {table}_events ENABLE TRIGGER USER")
            for trigger in triggers:
                conn.execute(f"ALTER TABLE {table} {'ENABLE' if on else 'DISABLE'} TRIGGER {trigger}")

    ids = itertools.count(10**8)
    results: dict[str, list[float]] = {"triggers on": [], "triggers off": []}
    for round_ in range(writes // 50):
        for label, on in (("triggers on", True), ("triggers off", False)) if round_ % 2 else (
                ("triggers off", False), ("triggers on", True)):
            switch(on)
            for _ in range(50):
                i = next(ids)
                t0 = time.perf_counter()
                await db.write_events([_write(i, 1)])
                await db.write_events([_write(i, 2)])
                results[label].append((time.perf_counter() - t0) * 1000)
    figures: dict[str, dict[str, float]] = {}
    for label, ms in results.items():
        print(summary(f"mirror write+decide, count {label}", ms))
        figures[label] = {"p50": pct(ms, 50), "p99": pct(ms, 99)}
    for label, on in (("triggers off", False), ("triggers on", True)):  # the counts are right after the last
        switch(on, empty=True)
        started = time.perf_counter()

        async def writer() -> None:
            for _ in range(writes // 8):
                i = next(ids)
                await db.write_events([_write(i, 1)])
                await db.write_events([_write(i, 2)])

        await asyncio.gather(*(writer() for _ in range(8)))
        rate = 8 * (writes // 8) / (time.perf_counter() - started)
        print(f"8 writers at once, count {label}: {rate:,.0f} approvals written and decided per second")
        figures[f"8 writers, {label}"] = {"per_second": rate}
    exact = db.count_approvals(status="approved", exact=True)
    assert db.count_approvals(status="approved") == exact == 8 * (writes // 8), "counts drifted under concurrent writers"
    await db.aclose()
    return figures


async def pause_latency(pauses: int, database_url: str) -> dict[str, dict[str, object]]:
    from bench import agents
    from hitl.worker import create_worker

    async with stack(False) as (client, address, server):
        os.environ["OPENAI_BASE_URL"] = server.base_url
        plain = Agent(OpenAIChat("bench-script"), name="bench-plain", tools=[agents.approve_refund],
                      task_queue=agents.QUEUE, temporal_address=address)
        mirrored = Agent(OpenAIChat("bench-script"), name="bench-mirrored", tools=[agents.approve_refund],
                         task_queue=agents.QUEUE, temporal_address=address,
                         db=PostgresDb(database_url, approvals_table="bench_mirror"))
        mirrored.db.migrate()
        async with create_worker(client, agents.QUEUE):
            results: dict[str, list[float]] = {"pause without db": [], "pause with db (mirrored)": []}
            for i in range(pauses + 5):
                for name, agent in (("pause without db", plain), ("pause with db (mirrored)", mirrored)):
                    t0 = time.perf_counter()
                    paused = await agent.arun("refund")
                    elapsed = (time.perf_counter() - t0) * 1000
                    assert paused.is_paused
                    if i >= 5:
                        results[name].append(elapsed)
    for name, ms in results.items():
        print(summary(name, ms))
    base, with_db = (pct(v, 50) for v in results.values())
    print(f"ratio with/without db p50: {with_db / base:.2f}")
    return {name: {"p50": pct(ms, 50), "p99": pct(ms, 99), "samples_ms": ms} for name, ms in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--pauses", type=int, default=100)
    parser.add_argument("--writes", type=int, default=400, help="mirror writes timed each way (count triggers on, off)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("DATABASE_URL") or devstack.postgres_url(Path(tmp) / "pg")
        db = PostgresDb(url, approvals_table=TABLE)
        db.migrate()
        t0 = time.perf_counter()
        seed(db, args.rows)
        print(f"seeded {args.rows} approval records in {time.perf_counter() - t0:.1f} s")
        queries = time_queries(db, args.repeat)
        db.close()
        mirror = PostgresDb(url, approvals_table=f"{TABLE}_writes")  # its own table: the triggers go off and on
        mirror.migrate()
        writes = asyncio.run(write_cost(mirror, args.writes))
        mirror.close()
        pauses = asyncio.run(pause_latency(args.pauses, url))
    samples.save("approvals", {"rows": args.rows, "queries": queries, "goal_p99_ms": 20, "writes": writes,
                               "pauses": pauses})


if __name__ == "__main__":
    main()
