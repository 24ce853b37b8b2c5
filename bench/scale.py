"""Scale: many runs paused at once, then all decided.

    python -m bench.scale [--runs 1000] [--concurrency 50] [--profile DIR]

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

from bench import agents, floors, profile
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


async def main(runs: int, concurrency: int, cache: int, fast: bool, profile_dir: Path | None = None) -> None:
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

                spent: dict[str, float] = {}
                server = profile.server_pid(int(address.rsplit(":", 1)[1])) if profile_dir else None
                phase = _Phase(profile_dir, "hitl", worker.pid, server, spent)
                t1 = time.perf_counter()
                with phase:
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

                bare_phase = _Phase(profile_dir, "bare", bare.pid, server, spent)
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
    print(f"runs paused at once: {runs}, client concurrency {concurrency}, worker workflow cache {cache}, "
          f"transferProcessorMaxPollRPS {'raised' if fast else 'default'}")
    print("hitl worker RSS by paused runs: " + ", ".join(f"{n}: {m:.0f} MiB" for n, m in memory[:-1])
          + f"; after all decided: {memory[-1][1]:.0f} MiB")
    print(f"runs started until paused: {pause_rate:.0f}/s")
    print(f"hitl decided -> completed: {hitl_rate:.0f} runs/s")
    print(f"(a) signal -> activity -> completed: {bare_rate:.0f} runs/s")
    print(f"ratio hitl/(a): {hitl_rate / bare_rate:.2f}")


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
    parser.add_argument("--cache", type=int, default=200, help="the hitl worker's max_cached_workflows")
    parser.add_argument("--fast-transfer", action="store_true", help="raise the dev server's transfer poll rate")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="CPU seconds of the workers and the dev server, py-spy profiles into DIR, events per run")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.concurrency, args.cache, args.fast_transfer, args.profile))
