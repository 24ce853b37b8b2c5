"""Scale: many runs paused at once, then all decided.

    python -m bench.scale [--runs 1000] [--concurrency 50]

Reports the hitl worker's resident memory as the paused runs pile up (it must not grow with
their number: the workflow cache is bounded and evicted runs cost nothing until they resume),
and decided runs per second beside reference (a)'s: bare workflows that wait for a signal, run
one activity and complete, released the same way. Each worker is its own process.
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

from bench import agents, floors
from bench.common import stack
from tests.test_durability import spawn_worker

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


async def main(runs: int, concurrency: int, cache: int, fast: bool) -> None:
    async with stack(fast) as (client, address, server):
        env = {**os.environ, "TEMPORAL_ADDRESS": address, "OPENAI_BASE_URL": server.base_url,
               "PYTHONPATH": str(ROOT), "HITL_MAX_CACHED_WORKFLOWS": str(cache)}
        agents.agent._overrides["temporal_address"] = address
        with tempfile.TemporaryDirectory() as tmp:
            worker = spawn_worker(env, Path(tmp) / "worker.log", "bench.agents")
            bare_log = Path(tmp) / "bare.log"
            with open(bare_log, "wb") as out:
                bare = subprocess.Popen([sys.executable, "-m", "bench.bare_worker", address], cwd=ROOT, env=env,
                                        stdout=out, stderr=subprocess.STDOUT)
            try:
                while b"worker ready" not in bare_log.read_bytes():
                    await asyncio.sleep(0.05)
                await agents.agent.arun("warm up")  # imports and caches, so memory starts from a working worker
                paused: list = []
                memory = [(0, rss_mib(worker.pid))]
                step = max(1, runs // 4)
                t0 = time.perf_counter()
                for start in range(0, runs, step):
                    batch: list = []
                    await bounded(min(step, runs - start), concurrency,
                                  lambda i: _append(batch, agents.agent.arun("refund")))
                    paused.extend(batch)
                    await asyncio.sleep(1)
                    memory.append((len(paused), rss_mib(worker.pid)))
                pause_rate = len(paused) / (time.perf_counter() - t0)
                assert all(p.is_paused for p in paused)

                async def decide(i: int) -> None:
                    p = paused[i]
                    p.active_requirements[0].confirm()
                    done = await agents.agent.acontinue_run(p.run_id, p.requirements)
                    assert done.content == "done: refunded o-1"

                t1 = time.perf_counter()
                await bounded(len(paused), concurrency, decide)
                hitl_rate = len(paused) / (time.perf_counter() - t1)
                memory.append((0, rss_mib(worker.pid)))

                handles: list = []
                await bounded(runs, concurrency, lambda i: _append(handles, client.start_workflow(
                    floors.SignalThenActivity.run, id=f"a-{uuid.uuid4()}", task_queue="bench-bare")))
                await asyncio.sleep(1)

                async def release(i: int) -> None:
                    await handles[i].signal(floors.SignalThenActivity.decide)
                    await handles[i].result()

                t2 = time.perf_counter()
                await bounded(runs, concurrency, release)
                bare_rate = runs / (time.perf_counter() - t2)
            finally:
                for proc in (worker, bare):
                    proc.kill()
                    proc.wait()
    print(f"runs paused at once: {runs}, client concurrency {concurrency}, worker workflow cache {cache}, "
          f"transferProcessorMaxPollRPS {'raised' if fast else 'default'}")
    print("hitl worker RSS by paused runs: " + ", ".join(f"{n}: {m:.0f} MiB" for n, m in memory[:-1])
          + f"; after all decided: {memory[-1][1]:.0f} MiB")
    print(f"runs started until paused: {pause_rate:.0f}/s")
    print(f"hitl decided -> completed: {hitl_rate:.0f} runs/s")
    print(f"(a) signal -> activity -> completed: {bare_rate:.0f} runs/s")
    print(f"ratio hitl/(a): {hitl_rate / bare_rate:.2f}")


async def _append(into: list, awaitable) -> None:
    into.append(await awaitable)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--cache", type=int, default=200, help="the hitl worker's max_cached_workflows")
    parser.add_argument("--fast-transfer", action="store_true", help="raise the dev server's transfer poll rate")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.concurrency, args.cache, args.fast_transfer))
