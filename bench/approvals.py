"""The audit trail at size: queries over one million approval records, and what mirroring adds to a pause.

    python -m bench.approvals [--rows 1000000] [--repeat 30] [--pauses 100]

Queries: each filter of get_approvals, and get_pending_approval_count, on a seeded table
(PostgreSQL from DATABASE_URL, else embedded). Pause latency: agent.arun() until paused, with and
without db=, on one dev server and worker, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import psycopg

from bench.common import pct, stack, summary
from hitl import Agent, OpenAIChat, PostgresDb, devstack

TABLE = "bench_approvals"
SEED = """
INSERT INTO {t} (id, run_id, requirement_id, session_id, user_id, agent_name, requirement_kind, approval_type,
                 status, context, arguments_digest, created_at, resolved_by, resolved_at, resolution, version)
SELECT 'run-' || g || '/req-1-call_0_0', 'run-' || g, 'req-1-call_0_0', NULL, 'user-' || (g %% 1000),
       'agent-' || (g %% 10), 'confirmation', 'required',
       CASE WHEN g %% 100 = 0 THEN 'pending' WHEN g %% 4 = 0 THEN 'rejected' WHEN g %% 25 = 1 THEN 'expired'
            ELSE 'approved' END,
       jsonb_build_object('tool_name', 'tool_' || (g %% 20), 'arguments', jsonb_build_object('amount', g %% 5000)),
       md5(g::text), now() - (g %% 525600) * interval '1 minute',
       CASE WHEN g %% 100 = 0 THEN NULL ELSE 'approver-' || (g %% 100) END,
       CASE WHEN g %% 100 = 0 THEN NULL ELSE now() - (g %% 525600) * interval '1 minute' + (g %% 3600) * interval '1 second' END,
       NULL, 2
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
        conn.execute(SEED.replace("{t}", TABLE), (rows,))
        conn.execute(f"VACUUM ANALYZE {TABLE}")  # what autovacuum would have done by now


def time_queries(db: PostgresDb, repeat: int) -> None:
    month = time.strftime("%Y-%m")
    now = time.time()
    cases = {
        "get_approvals(status='pending')": lambda: db.get_approvals(status="pending"),
        "get_approvals(status='approved')": lambda: db.get_approvals(status="approved"),
        "filters run_id": lambda: db.get_approvals(filters={"run_id": "run-424242"}),
        "filters tool_name": lambda: db.get_approvals(filters={"tool_name": "tool_7"}),
        "filters agent_name": lambda: db.get_approvals(filters={"agent_name": "agent-3"}),
        "filters resolved_by": lambda: db.get_approvals(filters={"resolved_by": "approver-42"}),
        "filters created_at last 7 days": lambda: db.get_approvals(
            filters={"created_at_gte": now - 7 * 86400, "created_at_lte": now}),
        f"filters month={month}": lambda: db.get_approvals(filters={"month": month}),
        "user_id= (Agno keyword)": lambda: db.get_approvals(user_id="user-7"),
        "get_pending_approval_count()": db.get_pending_approval_count,
    }
    for name, query in cases.items():
        query()  # warm
        ms = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            query()
            ms.append((time.perf_counter() - t0) * 1000)
        print(summary(name, ms))


async def pause_latency(pauses: int, database_url: str) -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--pauses", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = devstack.postgres_url(Path(tmp) / "pg")
        db = PostgresDb(url, approvals_table=TABLE)
        db.migrate()
        t0 = time.perf_counter()
        seed(db, args.rows)
        print(f"seeded {args.rows} approval records in {time.perf_counter() - t0:.1f} s")
        time_queries(db, args.repeat)
        db.close()
        asyncio.run(pause_latency(args.pauses, url))


if __name__ == "__main__":
    main()
