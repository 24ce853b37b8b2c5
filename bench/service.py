"""The decision service: what deciding over HTTP adds to a resume, and how fast approvals list at size.

    python -m bench.service [--runs 100] [--rows 1000000] [--seconds 10] [--strict]

Latency, each iteration in turn on one dev server, one worker, one service (uvicorn, loopback):
hitl HTTP: POST /approvals/{id}/resolve on a paused run until the answer (the run's end);
hitl Python: continue_run on the same kind of run; (a) a bare signal -> activity -> result;
(b) a bare update round trip. ``--strict``: the service signs and the worker checks signatures.
Listing: requests per second of GET /approvals (20 a page) over ``--rows`` seeded records, with
8 clients at once, beside db.get_approvals called from Python with the same concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import uvicorn
from temporalio.worker import Worker

from bench import floors
from bench.approvals import SEED
from bench.common import floor_a, floor_b, pct, stack, summary
from hitl import Agent, OpenAIChat, PostgresDb, devstack, signing, tool
from hitl.config import Settings
from hitl.service import ServiceConfig, create_app
from hitl.tokens import TokenStore
from hitl.worker import create_worker

QUEUE = "hitl-bench-service"


@tool(requires_confirmation=True)
def approve_refund(order_id: str) -> str:
    """Refund an order."""
    return f"refunded {order_id}"


def serve(db: PostgresDb, **settings: object) -> tuple[uvicorn.Server, str]:
    port = devstack.free_port()
    config = ServiceConfig(database_url=db.db_url, approvals_table=db.approvals_table, temporal=Settings.from_env(),
                           **settings)
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{port}"


async def mirrored(db: PostgresDb, approval_id: str) -> None:
    for _ in range(400):
        if await asyncio.to_thread(db.get_approval, approval_id) is not None:
            return
        await asyncio.sleep(0.01)
    raise RuntimeError(f"{approval_id} never mirrored")


async def latency(runs: int, strict: bool) -> None:
    async with stack(False) as (client, address, model):
        os.environ["TEMPORAL_ADDRESS"] = address
        os.environ["OPENAI_BASE_URL"] = model.base_url
        db = PostgresDb(approvals_table=f"bench_service_{uuid.uuid4().hex[:6]}")
        db.migrate()
        agent = Agent(OpenAIChat("bench-script"), name="bench-service-agent", tools=[approve_refund], db=db,
                      task_queue=QUEUE)
        settings: dict[str, object] = {}
        if strict:
            key = Path(tempfile.mkdtemp()) / "service.pem"
            signer = signing.Signer.generate()
            key.write_bytes(signer.pem())
            signing.trust([signer])
            settings["signing_key"] = str(key)
        server, url = serve(db, **settings)
        token = TokenStore(db).create("bench", ["approvals:read", "approvals:decide"])[1]
        bare = Worker(client, task_queue="bench-bare", workflows=[floors.SignalThenActivity, floors.BareUpdate],
                      activities=[floors.noop])
        http_ms, python_ms, a_ms, b_ms = [], [], [], []
        async with create_worker(client, QUEUE), bare, \
                httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            for i in range(runs + 10):  # the first 10 warm up
                paused = await agent.arun("refund o-1")
                approval_id = f"{paused.run_id}/{paused.requirements[0].id}"
                await mirrored(db, approval_id)
                t0 = time.perf_counter()
                r = await http.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
                http_elapsed = (time.perf_counter() - t0) * 1000
                assert r.status_code == 200 and r.json()["run"]["status"] == "completed", r.text

                paused = await agent.arun("refund o-1")
                paused.active_requirements[0].confirm(resolved_by="bench")
                if strict:
                    agent.signer = signer
                t1 = time.perf_counter()
                done = await agent.acontinue_run(paused.run_id, paused.requirements)
                python_elapsed = (time.perf_counter() - t1) * 1000
                assert done.status.value == "completed", done

                a_elapsed = await floor_a(client)
                b_elapsed = await floor_b(client)
                if i >= 10:
                    http_ms.append(http_elapsed)
                    python_ms.append(python_elapsed)
                    a_ms.append(a_elapsed)
                    b_ms.append(b_elapsed)
        server.should_exit = True
        signing.trust(None)
    print(f"strict (signed decisions): {strict}")
    print(summary("hitl HTTP resolve (decision -> tool -> model -> end)", http_ms))
    print(summary("hitl Python continue_run (the same)", python_ms))
    print(summary("(a) bare signal -> activity -> result", a_ms))
    print(summary("(b) bare update round trip", b_ms))
    print(f"HTTP - Python p50: {pct(http_ms, 50) - pct(python_ms, 50):+.1f} ms   HTTP/(a) p50: "
          f"{pct(http_ms, 50) / pct(a_ms, 50):.2f}   Python/(a) p50: {pct(python_ms, 50) / pct(a_ms, 50):.2f}   "
          f"HTTP/(b) p50: {pct(http_ms, 50) / pct(b_ms, 50):.2f}")


async def listing(rows: int, seconds: float) -> None:
    if True:
        url = os.environ["DATABASE_URL"]
        db = PostgresDb(url, approvals_table=f"bench_listing_{uuid.uuid4().hex[:6]}")
        db.migrate()
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SEED.replace("{t}", db.approvals_table), (rows,))
            conn.execute(f"ANALYZE {db.approvals_table}")
        print(f"seeded {rows:,} records in {time.perf_counter() - started:.0f} s")
        os.environ.setdefault("TEMPORAL_ADDRESS", "127.0.0.1:1")  # listing never asks Temporal
        server, base = serve(db)
        token = TokenStore(db).create("bench", ["approvals:read"])[1]
        for label, params in (("GET /approvals (newest 20)", {}), ("GET /approvals?status=pending", {"status": "pending"}),
                              ("GET /approvals?tool_name=tool_3", {"tool_name": "tool_3"})):
            async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
                http_rate, http_ms = await _rate(lambda: http.get("/approvals", params=params), seconds)
            filters = {k: v for k, v in params.items() if k != "status"}
            py_rate, py_ms = await _rate(lambda: asyncio.to_thread(db.get_approvals, params.get("status"), filters, 20),
                                         seconds)
            print(f"{label:<36} HTTP {http_rate:7.1f} req/s (p50 {pct(http_ms, 50):6.1f} ms)   "
                  f"Python {py_rate:7.1f} calls/s (p50 {pct(py_ms, 50):6.1f} ms)   HTTP/Python {http_rate / py_rate:.2f}")
        server.should_exit = True
        db.close()


async def _rate(call, seconds: float, clients: int = 8) -> tuple[float, list[float]]:
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def one() -> None:
        while time.perf_counter() < end:
            t = time.perf_counter()
            result = await call()
            if isinstance(result, httpx.Response):
                assert result.status_code == 200, result.text
            latencies.append((time.perf_counter() - t) * 1000)

    await asyncio.gather(*(one() for _ in range(clients)))
    return len(latencies) / seconds, latencies


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--strict", action="store_true")
    parser.add_argument("--skip-listing", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = devstack.postgres_url(Path(tempfile.mkdtemp()) / "pg")
    asyncio.run(latency(args.runs, args.strict))
    if not args.skip_listing:
        asyncio.run(listing(args.rows, args.seconds))
