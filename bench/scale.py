"""Scale: many runs paused at once, then all decided.

    python -m bench.scale [--runs 1000] [--concurrency 50] [--cache N] [--audit] [--profile DIR]

Reports the hitl worker's resident memory as the paused runs pile up (it must not grow with
their number: the workflow cache is bounded and evicted runs cost nothing until they resume),
and decided runs per second beside reference (a)'s: bare workflows that wait for a signal, run
one activity and complete, released the same way. Each worker is its own process, each with its
default cache unless ``--cache`` sets hitl's. Afterwards it checks what the runs left: every run
completed with its tool once, Temporal's visibility counts them completed, and with ``--audit``
(the agent mirrors its approvals into PostgreSQL) the trail holds one approved record per run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import agents, floors, profile, samples
from bench.common import stack
from hitl.dev import stack as devstack
from tests.core.test_durability import spawn_worker

ROOT = Path(__file__).resolve().parent.parent


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def bounded(n: int, concurrency: int, make) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await make(i)

    await asyncio.gather(*(one(i) for i in range(n)))


def checkpoints(runs: int) -> list[int]:
    """Paused-run counts at which the worker's memory is read: quarters, and 1,000 on the way to more."""
    marks = {runs * k // 4 for k in range(1, 5)} | ({1000} if runs > 1000 else set())
    return sorted(m for m in marks if m > 0)


async def main(runs: int, concurrency: int, cache: int | None, fast: bool, audit: bool,
               profile_dir: Path | None = None) -> None:
    async with stack(fast) as (client, address, server):
        env = {**os.environ, "TEMPORAL_ADDRESS": address, "OPENAI_BASE_URL": server.base_url, "PYTHONPATH": str(ROOT)}
        if cache is not None:
            env["HITL_MAX_CACHED_WORKFLOWS"] = str(cache)
        with tempfile.TemporaryDirectory() as tmp:
            modules = ["bench.agents"]
            agent = agents.agent
            if audit:
                env["BENCH_DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"] = devstack.postgres_url(Path(tmp) / "pg")
                from bench import audited_agents

                modules.append("bench.audited_agents")
                agent = audited_agents.agent
            agent._overrides["temporal_address"] = address
            worker = spawn_worker(env, Path(tmp) / "worker.log", *modules)
            bare_log = Path(tmp) / "bare.log"
            with open(bare_log, "wb") as out:
                bare = subprocess.Popen([sys.executable, "-m", "bench.bare_worker", address], cwd=ROOT, env=env,
                                        stdout=out, stderr=subprocess.STDOUT)
            try:
                while b"worker ready" not in bare_log.read_bytes():
                    await asyncio.sleep(0.05)
                warm = await agent.arun("warm up")  # imports and caches, so memory starts from a working worker
                warm.active_requirements[0].confirm()
                await agent.acontinue_run(warm.run_id, warm.requirements)
                paused: list = []
                memory = [(0, rss_mib(worker.pid))]
                t0 = time.perf_counter()
                for mark in checkpoints(runs):
                    batch: list = []
                    await bounded(mark - len(paused), concurrency, lambda i: _append(batch, agent.arun("refund")))  # noqa: B023 - awaited here
                    paused.extend(batch)
                    await asyncio.sleep(1)
                    memory.append((len(paused), rss_mib(worker.pid)))
                pause_rate = len(paused) / (time.perf_counter() - t0 - len(memory) + 1)
                assert all(p.is_paused for p in paused)

                async def decide(i: int) -> None:
                    p = paused[i]
                    p.active_requirements[0].confirm()
                    done = await agent.acontinue_run(p.run_id, p.requirements)
                    assert done.content == "done: refunded o-1"

                spent: dict[str, float] = {}
                server_pid = profile.server_pid(int(address.rsplit(":", 1)[1])) if profile_dir else None
                phase = _Phase(profile_dir, "hitl", worker.pid, server_pid, spent)
                t1 = time.perf_counter()
                with phase:
                    await bounded(len(paused), concurrency, decide)
                hitl_rate = len(paused) / (time.perf_counter() - t1)
                memory.append((0, rss_mib(worker.pid)))
                await check_left(client, agent, len(paused) + 1, audit)

                handles: list = []
                await bounded(runs, concurrency, lambda i: _append(handles, client.start_workflow(
                    floors.SignalThenActivity.run, id=f"a-{uuid.uuid4()}", task_queue="bench-bare")))
                await asyncio.sleep(1)

                async def release(i: int) -> None:
                    await handles[i].signal(floors.SignalThenActivity.decide)
                    await handles[i].result()

                bare_phase = _Phase(profile_dir, "bare", bare.pid, server_pid, spent)
                t2 = time.perf_counter()
                with bare_phase:
                    await bounded(runs, concurrency, release)
                bare_rate = runs / (time.perf_counter() - t2)
                if profile_dir:
                    sample = [p.run_id for p in paused[:20]]
                    spent["events hitl"] = await profile.events_per_run(client, sample)
                    spent["events bare"] = await profile.events_per_run(client, [h.id for h in handles[:20]])
                    kinds = profile.event_kinds(await client.get_workflow_handle(paused[0].run_id).fetch_history())
                    phase.report(len(paused), spent, kinds)
                    bare_phase.report(runs, spent, None)
            finally:
                for proc in (worker, bare):
                    proc.kill()
                    proc.wait()
    kept = "default" if cache is None else str(cache)
    print(f"runs paused at once: {runs}, client concurrency {concurrency}, hitl worker workflow cache {kept}, "
          f"audit trail {'on' if audit else 'off'}, transferProcessorMaxPollRPS {'raised' if fast else 'default'}")
    print("hitl worker RSS by paused runs: " + ", ".join(f"{n}: {m:.0f} MiB" for n, m in memory[:-1])
          + f"; after all decided: {memory[-1][1]:.0f} MiB")
    at = dict(memory[:-1])
    growth = at[runs] / at[1000] - 1 if runs > 1000 else None
    if growth is not None:
        print(f"RSS growth from 1,000 to {runs:,} paused runs: {growth:+.1%}")
    print(f"runs started until paused: {pause_rate:.0f}/s")
    print(f"hitl decided -> completed: {hitl_rate:.0f} runs/s")
    print(f"(a) signal -> activity -> completed: {bare_rate:.0f} runs/s")
    print(f"ratio hitl/(a): {hitl_rate / bare_rate:.2f}")
    samples.save(f"scale-{runs}{'-audit' if audit else ''}", {
        "runs": runs, "cache": kept, "audit": audit, "fast_transfer": fast,
        "rates": {"hitl": hitl_rate, "(a)": bare_rate}, "ratio": hitl_rate / bare_rate,
        "rss_mib": [list(m) for m in memory[:-1]], "rss_growth_from_1000": growth, "pause_rate": pause_rate,
        "cpu_ms_per_run": {k: v / runs * 1000 for k, v in spent.items() if k.endswith("cpu")}})


async def check_left(client, agent, expected: int, audit: bool) -> None:
    """What the runs left behind: Temporal's visibility shows each completed, and the trail one approval each."""
    query = f'HitlAgent = "{agent.name}" AND HitlStatus = "completed"'
    for _ in range(300):  # visibility is eventually consistent
        counted = (await client.count_workflows(query)).count
        if counted == expected:
            break
        await asyncio.sleep(0.1)
    assert counted == expected, f"visibility counts {counted} completed runs of {agent.name}, expected {expected}"
    if audit:
        import psycopg

        from bench.audited_agents import TABLE

        with psycopg.connect(os.environ["BENCH_DATABASE_URL"]) as conn:
            rows = dict(conn.execute(f"SELECT status, count(*) FROM {TABLE} "  # noqa: S608 - a constant
                                     "WHERE agent_name = %s GROUP BY status", (agent.name,)).fetchall())
        assert rows == {"approved": expected}, f"audit trail holds {rows}, expected {expected} approved"
    trail = ", one approved record each in the trail" if audit else ""
    print(f"checked: {expected} runs completed in Temporal's visibility{trail}")


class _Phase:
    """With --profile: CPU seconds of the worker and the dev server over a phase, and a py-spy profile."""

    def __init__(self, out: Path | None, name: str, pid: int, server: int | None, spent: dict[str, float]) -> None:
        self.out, self.name, self.pid, self.server, self.spent = out, name, pid, server, spent
        self.spy: profile.Sampled | None = None

    def __enter__(self) -> None:
        if self.out is None:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        self.cpu = (profile.cpu_seconds(self.pid), profile.cpu_seconds(self.server) if self.server else 0.0)
        self.spy = profile.Sampled(self.pid, self.out / f"{self.name}.txt")
        self.spy.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self.spy is None:
            return
        self.spy.__exit__(*exc)
        self.spent[f"{self.name} worker cpu"] = profile.cpu_seconds(self.pid) - self.cpu[0]
        self.spent[f"{self.name} server cpu"] = (profile.cpu_seconds(self.server) - self.cpu[1]) if self.server else 0.0

    def report(self, runs: int, spent: dict[str, float], kinds: object) -> None:
        worker, server = spent[f"{self.name} worker cpu"], spent[f"{self.name} server cpu"]
        print(f"--- {self.name}: per decided run, worker CPU {worker / runs * 1000:.1f} ms, dev server CPU "
              f"{server / runs * 1000:.1f} ms; history events per run {spent[f'events {self.name}']:.0f}")
        assert self.spy is not None
        samples, top = self.spy.top()
        print(f"    worker samples: {samples} (inclusive share by bucket)")
        for bucket, share in top:
            print(f"    {share:6.1%}  {bucket}")
        if kinds:
            print("    events of one hitl run: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda x: -x[1])))


async def _append(into: list, awaitable) -> None:
    into.append(await awaitable)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--cache", type=int, default=None, help="the hitl worker's max_cached_workflows (default: hitl's)")
    parser.add_argument("--audit", action="store_true", help="the agent mirrors its approvals into PostgreSQL")
    parser.add_argument("--fast-transfer", action="store_true", help="raise the dev server's transfer poll rate")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="CPU seconds of the workers and the dev server, py-spy profiles into DIR, events per run")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.concurrency, args.cache, args.fast_transfer, args.audit, args.profile))
