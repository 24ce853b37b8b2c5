"""The decision service: what deciding over HTTP adds to a resume, and how fast approvals list at size.

    python -m bench.service [--runs 100] [--rows 1000000] [--seconds 10] [--strict] [--fast-transfer]
                            [--skip-listing | --skip-latency]

Latency, each iteration in turn on one dev server, one worker, one service (``hitl serve`` in a
process of its own, on loopback): hitl HTTP: POST /approvals/{id}/resolve on a paused run until
the answer (the run's end); hitl Python: continue_run on the same kind of run, at the same moment
(once the approval's record is written); (a) a bare signal -> activity -> result;
(b) a bare update round trip. ``--strict``: the service signs and the worker checks signatures.
Listing: requests per second of GET /approvals (20 a page) over ``--rows`` seeded records, with
8 clients at once, beside db.get_approvals called from Python with the same concurrency, and the
CPU each takes a request: the service's process, httpx's in this one, the Python call's in this one
(on 2 cores they share the CPU with PostgreSQL); raw figures saved as bench/data/service_listing.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
from temporalio.worker import Worker

from bench import floors, samples
from bench.approvals import SEED
from bench.common import floor_a, floor_b, pct, stack, summary
from bench.profile import cpu_seconds
from hitl import Agent, OpenAIChat, PostgresDb, tool
from hitl._core import approvals as _approvals
from hitl.dev import stack as devstack
from hitl.identity import Principal
from hitl.security import signing
from hitl.security.tokens import TokenStore
from hitl.worker import create_worker

QUEUE = "hitl-bench-service"


@tool(requires_confirmation=True)
def approve_refund(order_id: str) -> str:
    """Refund an order."""
    return f"refunded {order_id}"


def serve(db: PostgresDb, signing_key: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """``hitl serve`` in a process of its own, as deployed (in this process it would share the GIL with the worker)."""
    port = devstack.free_port()
    env = {**os.environ, "DATABASE_URL": db.db_url, **({"HITL_SIGNING_KEY": signing_key} if signing_key else {})}
    proc = subprocess.Popen([sys.executable, "-m", "hitl.cli", "serve", "--port", str(port), "--approvals-table",
                             db.approvals_table], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/openapi.json").status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("hitl serve did not start")


SETTLE = 0.2
"""Seconds a paused run is left alone before it is decided, as a person would (``--settle``)."""


async def mirrored(db: PostgresDb, approval_id: str) -> None:
    """The approval's record is written, and the run has settled into its pause."""
    for _ in range(400):
        if await asyncio.to_thread(db.get_approval, approval_id) is not None:
            # Deciding while the run's mirror activity is still completing rides on the workflow task
            # that completion schedules, through the transfer queue: a person never decides that fast.
            # At a random phase: a fixed pause would lock the loop to the server's 50 ms transfer poll.
            await asyncio.sleep(SETTLE + random.uniform(0, 0.05))
            return
        await asyncio.sleep(0.01)
    raise RuntimeError(f"{approval_id} never mirrored")


async def latency(runs: int, strict: bool, fast_transfer: bool) -> None:
    async with stack(fast_transfer) as (client, address, model):
        os.environ["TEMPORAL_ADDRESS"] = address
        os.environ["OPENAI_BASE_URL"] = model.base_url
        db = PostgresDb(approvals_table=f"bench_service_{uuid.uuid4().hex[:6]}")
        db.migrate()
        agent = Agent(OpenAIChat("bench-script"), name="bench-service-agent", tools=[approve_refund], db=db,
                      task_queue=QUEUE)
        key, signer = None, None
        if strict:
            key = Path(tempfile.mkdtemp()) / "service.pem"
            signer = signing.Signer.generate()
            key.write_bytes(signer.pem())
            signing.trust([signer])
        server, url = serve(db, str(key) if key else None)
        token = TokenStore(db).create("bench", ["approvals:read", "approvals:decide"])[1]
        bare = Worker(client, task_queue="bench-bare", workflows=[floors.SignalThenActivity, floors.BareUpdate],
                      activities=[floors.noop])
        http_ms, python_ms, a_ms, b_ms, server_ms, core_ms, status_ms = [], [], [], [], [], [], []
        principal = Principal(name="bench", scopes=frozenset({"approvals:read", "approvals:decide"}))
        async with create_worker(client, QUEUE), bare, \
                httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            for i in range(runs + 10):  # the first 10 warm up
                paused = await agent.arun("refund o-1")
                approval_id = f"{paused.run_id}/{paused.requirements[0].id}"
                await mirrored(db, approval_id)
                t0 = time.perf_counter()
                r = await http.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
                http_elapsed = (time.perf_counter() - t0) * 1000
                server_ms.append(float(r.headers["Server-Timing"].split("dur=")[1]))
                t4 = time.perf_counter()
                assert (await http.get(f"/approvals/{approval_id}/status")).status_code == 200
                status_ms.append((time.perf_counter() - t4) * 1000)

                # The service's core (_approvals.resolve), called in this process as the Python path is.
                paused = await agent.arun("refund o-1")
                approval_id = f"{paused.run_id}/{paused.requirements[0].id}"
                await mirrored(db, approval_id)
                t5 = time.perf_counter()
                result = await _approvals.resolve(client, db, principal, approval_id,
                                                  _approvals.ResolveRequest(status="approved"), wait=60,
                                                  signer=signer if strict else None)
                core_ms.append((time.perf_counter() - t5) * 1000)
                assert result.run.status.value == "completed", result
                assert r.status_code == 200 and r.json()["run"]["status"] == "completed", r.text

                paused = await agent.arun("refund o-1")
                # The same moment as the HTTP path's: the approval's record written. Deciding while
                # the run's mirror activity is still in flight is faster, by either path.
                await mirrored(db, f"{paused.run_id}/{paused.requirements[0].id}")
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
        server.terminate()
        server.wait()
        signing.trust(None)
    print(f"strict (signed decisions): {strict}; transferProcessorMaxPollRPS: {'raised' if fast_transfer else 'default (20)'}")
    print(summary("hitl HTTP resolve (decision -> tool -> model -> end)", http_ms))
    print(summary("  of which in the service (Server-Timing)", server_ms[10:]))
    print(summary("hitl core resolve in this process (no HTTP)", core_ms[10:]))
    print(summary("hitl Python continue_run (the same)", python_ms))
    print(summary("GET /approvals/{id}/status round trip", status_ms[10:]))
    print(summary("(a) bare signal -> activity -> result", a_ms))
    print(summary("(b) bare update round trip", b_ms))
    print(f"core - Python p50: {pct(core_ms[10:], 50) - pct(python_ms, 50):+.1f} ms   "
          f"HTTP - Python p50: {pct(http_ms, 50) - pct(python_ms, 50):+.1f} ms   HTTP/(a) p50: "
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
        db.compact_counts()  # the seed's count deltas, folded as the mirror does every few hundred writes
        with psycopg.connect(url, autocommit=True) as conn:
            for table in ("", "_counts", "_count_deltas"):
                conn.execute(f"VACUUM ANALYZE {db.approvals_table}{table}")
        print(f"seeded {rows:,} records in {time.perf_counter() - started:.0f} s")
        os.environ.setdefault("TEMPORAL_ADDRESS", "127.0.0.1:1")  # listing never asks Temporal
        server, base = serve(db)
        token = TokenStore(db).create("bench", ["approvals:read"])[1]
        figures: dict[str, dict[str, float]] = {}
        for label, params in (("GET /approvals (newest 20)", {}), ("GET /approvals?status=pending", {"status": "pending"}),
                              ("GET /approvals?status=approved", {"status": "approved"}),
                              ("GET /approvals?tool_name=tool_3", {"tool_name": "tool_3"}),
                              ("GET /approvals?agent_name=agent-3", {"agent_name": "agent-3"}),
                              ("GET /approvals?user_id=user-7", {"user_id": "user-7"})):
            async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
                cpu = _cpu(server.pid)
                http_rate, http_ms = await _rate(lambda: http.get("/approvals", params=params), seconds)  # noqa: B023 - awaited here
                server_cpu, http_client_cpu = (after - before for after, before in zip(_cpu(server.pid), cpu, strict=True))
                meta = (await http.get("/approvals", params=params)).json()["meta"]
            filters = {k: v for k, v in params.items() if k != "status"}
            cpu = _cpu(server.pid)
            py_rate, py_ms = await _rate(lambda: asyncio.to_thread(db.get_approvals, params.get("status"), filters, 20),  # noqa: B023
                                         seconds)
            py_cpu = time.process_time() - cpu[1]
            exactness = "estimated" if meta.get("total_count_estimated") else "exact"
            per_request = {"service_cpu_ms": server_cpu * 1000 / len(http_ms),
                           "http_client_cpu_ms": http_client_cpu * 1000 / len(http_ms), "python_cpu_ms": py_cpu * 1000 / len(py_ms)}
            print(f"{label:<36} HTTP {http_rate:7.1f} req/s (p50 {pct(http_ms, 50):6.1f} ms)   "
                  f"Python {py_rate:7.1f} calls/s (p50 {pct(py_ms, 50):6.1f} ms)   HTTP/Python {http_rate / py_rate:.2f}"
                  f"   total_count {meta['total_count']:,} ({exactness})\n{'':<36} CPU a request: service "
                  f"{per_request['service_cpu_ms']:.2f} ms + httpx {per_request['http_client_cpu_ms']:.2f} ms;"
                  f" a Python call {per_request['python_cpu_ms']:.2f} ms (PostgreSQL's not counted)")
            figures[label] = {"http_rate": http_rate, "python_rate": py_rate, "http_p50": pct(http_ms, 50),
                              "python_p50": pct(py_ms, 50), "http_p99": pct(http_ms, 99), "python_p99": pct(py_ms, 99),
                              "total_count": meta["total_count"], "estimated": exactness == "estimated", **per_request}
        server.terminate()
        server.wait()
        db.close()
        samples.save("service_listing", {"rows": rows, "clients": 8, "seconds": seconds, "listing": figures})


def _cpu(service_pid: int) -> tuple[float, float]:
    """CPU seconds used so far by the service's process and by this one (the clients: httpx, or the Python calls)."""
    return cpu_seconds(service_pid), time.process_time()


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
    parser.add_argument("--skip-latency", action="store_true", help="only the listing at --rows")
    parser.add_argument("--fast-transfer", action="store_true", help="raise the dev server's transfer poll rate")
    parser.add_argument("--settle", type=float, default=SETTLE, help="seconds a paused run is left before it is decided")
    args = parser.parse_args()
    SETTLE = args.settle
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = devstack.postgres_url(Path(tempfile.mkdtemp()) / "pg")
    if not args.skip_latency:
        asyncio.run(latency(args.runs, args.strict, args.fast_transfer))
    if not args.skip_listing:
        asyncio.run(listing(args.rows, args.seconds))
