"""Several worker processes on one task queue: decided runs/s with 1, 2, 3 workers, beside (a)'s.

    python -m bench.workers [--runs 1000] [--concurrency 50] [--workers 1,2,3] [--cache N] [--fast-transfer]

On one dev server, for each worker count N: N hitl worker processes serve the bench agent's
queue; ``--runs`` runs are paused, then all decided at client concurrency ``--concurrency``;
then N ``bench.bare_worker`` processes serve reference (a) (signal -> one activity -> done),
released the same way. Over each decide phase it reads the CPU seconds of every worker, of the
dev server and of this process (the client and the scripted model server, a thread here), and
the machine's CPU utilisation from /proc/stat: on 2 cores they all share the CPU, so that is what
bounds the scaling. Afterwards it reads every run's history: each run must have completed with
its tool run once, and the worker whose identity completed it is counted, to show the runs
really spread over the workers.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench import agents, floors, samples
from bench.common import stack
from bench.profile import TICKS, cpu_seconds, server_pid
from bench.scale import bounded
from hitl._wire import RUN_TOOL

ROOT = Path(__file__).resolve().parent.parent
BARE_QUEUE = "bench-bare"  # bench.bare_worker's queue

# Every worker process this benchmark starts, so that each exit path (an error, Ctrl-C, SIGTERM) kills them.
_started: list[subprocess.Popen[bytes]] = []


def _kill(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc in _started:
            _started.remove(proc)


atexit.register(lambda: _kill(list(_started)))


def snapshot(dest: Path) -> Path:
    """A copy of the code the workers run, laid out as installed (``hitl.workflows``, ``hitl.activities``).

    Other people change the workflow code in this working tree while benchmarks run, and each worker
    count starts fresh worker processes: without a copy taken once, 1 and 3 workers could run
    different code and their ratio would mean nothing.
    """
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "data")
    shutil.copytree(ROOT / "hitl", dest / "hitl", ignore=skip)
    shutil.copytree(ROOT / "workflows", dest / "hitl" / "workflows", ignore=skip)
    shutil.copytree(ROOT / "activities", dest / "hitl" / "activities", ignore=skip)
    shutil.copytree(ROOT / "bench", dest / "bench", ignore=skip)
    shutil.copy(ROOT / "worker.py", dest / "worker.py")
    return dest


def code_version() -> dict[str, Any]:
    """The commit the snapshot was taken at, and the files under hitl code that differed from it then."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.rstrip("\n")

    changed = git("status", "--porcelain", "--", "hitl", "workflows", "activities").splitlines()
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted": [line[3:] for line in changed]}


def spawn(code: Path, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """A worker process run from the snapshot (as ``tests.core.test_durability.spawn_worker`` does from the tree)."""
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, *args], cwd=code, env={**env, "PYTHONPATH": str(code)},
                                stdout=out, stderr=subprocess.STDOUT)
    _started.append(proc)
    return proc


async def until_ready(proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(1200):
        if b"worker ready" in log.read_bytes():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}: {log.read_text()[-2000:]}")
        await asyncio.sleep(0.05)
    raise RuntimeError(f"worker did not start in 60 s: {log}")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine, all cores, since boot (the ``cpu`` line of /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields)  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - idle, total


@dataclass
class Phase:
    """CPU over one decide phase: per worker, the dev server, this process, and the whole machine."""

    workers: list[int]
    server: int | None
    seconds: float = 0.0
    worker_cpu: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    machine_busy: float = 0.0  # CPU seconds, all cores
    machine_utilisation: float = 0.0  # busy / (cores x wall time)

    def __enter__(self) -> Phase:
        self._start = (time.perf_counter(), [cpu_seconds(p) for p in self.workers],
                       cpu_seconds(self.server) if self.server else 0.0, cpu_seconds(os.getpid()), machine_ticks())
        return self

    def __exit__(self, *_: object) -> None:
        t0, workers0, server0, client0, (busy0, total0) = self._start
        busy1, total1 = machine_ticks()
        self.seconds = time.perf_counter() - t0
        self.worker_cpu = [cpu_seconds(p) - c for p, c in zip(self.workers, workers0, strict=True)]
        self.server_cpu = (cpu_seconds(self.server) - server0) if self.server else 0.0
        self.client_cpu = cpu_seconds(os.getpid()) - client0
        self.machine_busy = (busy1 - busy0) / TICKS
        self.machine_utilisation = (busy1 - busy0) / max(1, total1 - total0)

    @property
    def other_cpu(self) -> float:
        """Machine CPU not spent by the workers, the dev server or this process (other people, py-spy, the kernel)."""
        return self.machine_busy - sum(self.worker_cpu) - self.server_cpu - self.client_cpu


@dataclass
class Result:
    """One worker count's measurement: hitl's phase and (a)'s, with runs per worker from the histories."""

    n: int
    hitl_rate: float = 0.0
    bare_rate: float = 0.0
    hitl: Phase | None = None
    bare: Phase | None = None
    hitl_spread: list[int] = field(default_factory=list)
    bare_spread: list[int] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)


async def chain_history(client: Client, workflow_id: str) -> list[Any]:
    """Every event of a workflow id's continue-as-new chain, oldest run first."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    events = list(history.events)
    while previous := events[0].workflow_execution_started_event_attributes.continued_execution_run_id:
        earlier = await client.get_workflow_handle(workflow_id, run_id=previous).fetch_history()
        events = list(earlier.events) + events
    return events


def completed_by(events: list[Any]) -> str:
    """Identity of the worker whose workflow task completed the run (the one that ran the decided part)."""
    done = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
    return done[-1].workflow_task_completed_event_attributes.identity if done else ""


def runs_of(events: list[Any], activity_type: str) -> int:
    """How many times an activity ran in a history: remote attempts started, plus local-activity markers."""
    scheduled = {e.event_id for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                 and e.activity_task_scheduled_event_attributes.activity_type.name == activity_type}
    attempts = sum(e.activity_task_started_event_attributes.attempt for e in events
                   if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                   and e.activity_task_started_event_attributes.scheduled_event_id in scheduled)
    markers = sum(1 for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
                  and activity_type.encode() in e.marker_recorded_event_attributes.SerializeToString())
    return attempts + markers


async def audit_runs(client: Client, ids: list[str], activity_type: str, pids: list[int], concurrency: int,
                     wrong: list[str]) -> list[int]:
    """Runs completed by each worker (by its identity, ``pid@host``); a run not completed, or whose
    activity did not run exactly once, is added to ``wrong``."""
    by_identity: Counter[str] = Counter()

    async def one(i: int) -> None:
        events = await chain_history(client, ids[i])
        if events[-1].event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            wrong.append(f"{ids[i]}: ended with {EventType.Name(events[-1].event_type)}")
        if (ran := runs_of(events, activity_type)) != 1:
            wrong.append(f"{ids[i]}: {activity_type} ran {ran} times")
        by_identity[completed_by(events).split("@")[0]] += 1

    await bounded(len(ids), concurrency, one)
    spread = [by_identity.pop(str(pid), 0) for pid in pids]
    if by_identity:
        wrong.append(f"completed by workers not started here: {dict(by_identity)}")
    return spread


async def hitl_phase(result: Result, client: Client, env: dict[str, str], code: Path, tmp: Path, server: int | None,
                     runs: int, concurrency: int) -> None:
    """N hitl workers: pause ``runs`` runs, then decide them all (timed); then audit their histories."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(result.n):
            log = tmp / f"hitl-{result.n}-{i}.log"
            procs.append(spawn(code, env, log, "worker.py", "--agents", "bench.agents"))
            await until_ready(procs[-1], log)

        async def pause(i: int) -> None:
            paused[i] = await agents.agent.arun("refund")

        async def decide(i: int) -> None:
            p = paused[i]
            p.active_requirements[0].confirm()
            done = await agents.agent.acontinue_run(p.run_id, p.requirements)
            assert done.content == "done: refunded o-1", done.content

        # Warm-up: a few whole runs, so that each worker has imported and run both halves once.
        paused: list[Any] = [None] * (2 * result.n)
        await bounded(len(paused), len(paused), pause)
        await bounded(len(paused), len(paused), decide)

        paused = [None] * runs
        await bounded(runs, concurrency, pause)
        assert all(p.is_paused for p in paused)
        await asyncio.sleep(1)  # let the pauses' last tasks and mirrors settle
        with Phase([p.pid for p in procs], server) as result.hitl:
            await bounded(runs, concurrency, decide)
        result.hitl_rate = runs / result.hitl.seconds
        result.hitl_spread = await audit_runs(client, [p.run_id for p in paused], RUN_TOOL, [p.pid for p in procs],
                                              concurrency, result.wrong)
    finally:
        _kill(procs)


async def bare_phase(result: Result, client: Client, env: dict[str, str], address: str, code: Path, tmp: Path,
                     server: int | None, runs: int, concurrency: int) -> None:
    """N bare workers: start ``runs`` of (a), then release them all (timed); then audit their histories."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(result.n):
            log = tmp / f"bare-{result.n}-{i}.log"
            procs.append(spawn(code, env, log, "-m", "bench.bare_worker", address))
            await until_ready(procs[-1], log)
        handles: list[Any] = [None] * runs

        async def start(i: int) -> None:
            handles[i] = await client.start_workflow(floors.SignalThenActivity.run, id=f"a-{uuid.uuid4()}",
                                                     task_queue=BARE_QUEUE)

        async def release(i: int) -> None:
            await handles[i].signal(floors.SignalThenActivity.decide)
            assert await handles[i].result() == "x"

        await bounded(runs, concurrency, start)
        await asyncio.sleep(1)
        with Phase([p.pid for p in procs], server) as result.bare:
            await bounded(runs, concurrency, release)
        result.bare_rate = runs / result.bare.seconds
        result.bare_spread = await audit_runs(client, [h.id for h in handles], "bench.noop", [p.pid for p in procs],
                                              concurrency, result.wrong)
    finally:
        _kill(procs)


async def main(runs: int, concurrency: int, counts: list[int], cache: int, fast: bool) -> tuple[list[Result], dict[str, Any]]:
    results: list[Result] = []
    async with stack(fast) as (client, address, model):
        env = {**os.environ, "TEMPORAL_ADDRESS": address, "OPENAI_BASE_URL": model.base_url,
               "HITL_MAX_CACHED_WORKFLOWS": str(cache)}  # PYTHONPATH: the snapshot, set by spawn()
        agents.agent._overrides["temporal_address"] = address
        server = server_pid(int(address.rsplit(":", 1)[1]))
        with tempfile.TemporaryDirectory() as tmp:
            code, version = snapshot(Path(tmp) / "code"), code_version()
            for n in counts:
                result = Result(n)
                await hitl_phase(result, client, env, code, Path(tmp), server, runs, concurrency)
                await bare_phase(result, client, env, address, code, Path(tmp), server, runs, concurrency)
                results.append(result)
                report_one(result, runs)
    return results, version


def ms_per_run(cpu: float, runs: int) -> str:
    return f"{cpu / runs * 1000:.1f}"


def report_one(r: Result, runs: int) -> None:
    for name, phase, rate, spread in (("hitl", r.hitl, r.hitl_rate, r.hitl_spread), ("(a)", r.bare, r.bare_rate, r.bare_spread)):
        assert phase is not None
        each = ", ".join(ms_per_run(c, runs) for c in phase.worker_cpu)
        print(f"{r.n} worker(s), {name}: {rate:.1f} runs/s over {phase.seconds:.1f} s; CPU ms per decided run: "
              f"workers {ms_per_run(sum(phase.worker_cpu), runs)} (each {each}), "
              f"dev server {ms_per_run(phase.server_cpu, runs)}, client+model {ms_per_run(phase.client_cpu, runs)}, "
              f"other {ms_per_run(phase.other_cpu, runs)}; machine {phase.machine_utilisation:.0%} busy; "
              f"runs completed per worker {' / '.join(map(str, spread))}", flush=True)


def report(results: list[Result], runs: int, concurrency: int, cache: int, fast: bool) -> None:
    base = results[0]
    print(f"\n{runs} runs per phase, client concurrency {concurrency}, hitl workflow cache {cache} per worker, "
          f"transferProcessorMaxPollRPS {'raised' if fast else 'default'}, {os.cpu_count()} cores")
    print("| workers | hitl runs/s | (a) runs/s | hitl(N)/hitl(1) | (a)(N)/(a)(1) | hitl/(a) | hitl CPU ms/run: workers "
          "/ server / client+model | (a) CPU ms/run: workers / server / client | server share of busy CPU, hitl / (a) "
          "| machine busy, hitl / (a) | runs per worker, hitl; (a) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        h, a = r.hitl, r.bare
        assert h is not None and a is not None
        print(f"| {r.n} | {r.hitl_rate:.1f} | {r.bare_rate:.1f} | {r.hitl_rate / base.hitl_rate:.2f}x | "
              f"{r.bare_rate / base.bare_rate:.2f}x | {r.hitl_rate / r.bare_rate:.2f} | "
              f"{ms_per_run(sum(h.worker_cpu), runs)} / {ms_per_run(h.server_cpu, runs)} / {ms_per_run(h.client_cpu, runs)} | "
              f"{ms_per_run(sum(a.worker_cpu), runs)} / {ms_per_run(a.server_cpu, runs)} / {ms_per_run(a.client_cpu, runs)} | "
              f"{h.server_cpu / h.machine_busy:.0%} / {a.server_cpu / a.machine_busy:.0%} | "
              f"{h.machine_utilisation:.0%} / {a.machine_utilisation:.0%} | "
              f"{' / '.join(map(str, r.hitl_spread))}; {' / '.join(map(str, r.bare_spread))} |")


def save(results: list[Result], version: dict[str, Any], runs: int, concurrency: int, cache: int, fast: bool) -> Path:
    def per_n(fn: Any) -> dict[str, Any]:
        return {str(r.n): fn(r) for r in results}

    def cpu(p: Phase) -> dict[str, float]:
        return {"workers": sum(p.worker_cpu) / runs * 1000, "each worker": [c / runs * 1000 for c in p.worker_cpu],
                "server": p.server_cpu / runs * 1000, "client and model": p.client_cpu / runs * 1000,
                "other": p.other_cpu / runs * 1000}

    return samples.save("workers", {
        "code": version, "runs": runs, "concurrency": concurrency, "cache": cache, "fast_transfer": fast,
        "cores": os.cpu_count(),
        "rates": per_n(lambda r: {"hitl": r.hitl_rate, "(a)": r.bare_rate}),
        "server_cpu_share": per_n(lambda r: r.hitl.server_cpu / r.hitl.machine_busy),
        "server_cpu_share_a": per_n(lambda r: r.bare.server_cpu / r.bare.machine_busy),
        "cpu_ms_per_run": per_n(lambda r: {"hitl": cpu(r.hitl), "(a)": cpu(r.bare)}),
        "machine_cpu_utilisation": per_n(lambda r: {"hitl": r.hitl.machine_utilisation, "(a)": r.bare.machine_utilisation}),
        "runs_per_worker": per_n(lambda r: {"hitl": r.hitl_spread, "(a)": r.bare_spread}),
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", default="1,2,3", help="worker counts to measure, comma-separated (first is the base)")
    parser.add_argument("--cache", type=int, default=None,
                        help="each hitl worker's max_cached_workflows (default: --runs, so every paused run fits in one "
                             "worker and more workers do not also mean fewer replays)")
    parser.add_argument("--fast-transfer", action="store_true", help="raise the dev server's transfer poll rate")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so atexit kills the workers
    cache = args.cache if args.cache is not None else args.runs
    counts = [int(n) for n in args.workers.split(",")]
    results, version = asyncio.run(main(args.runs, args.concurrency, counts, cache, args.fast_transfer))
    report(results, args.runs, args.concurrency, cache, args.fast_transfer)
    print(f"raw figures: {save(results, version, args.runs, args.concurrency, cache, args.fast_transfer)}")
    wrong = [w for r in results for w in r.wrong]
    if wrong:
        sys.exit(f"{len(wrong)} runs did not complete with their activity once: " + "; ".join(wrong[:10]))
    print("every run completed with its tool (or (a)'s activity) run once")
