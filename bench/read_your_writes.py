"""What read-your-writes costs: an audited agent's pause and resume, with and without waiting for the records.

    python -m bench.read_your_writes [--runs 100] [--fast-transfer]

With it (hitl's default), ``run`` returns a pause once its pending record is committed, and
``continue_run`` returns once the decision is on the record; without it (the wait skipped, as
before issue 22) the call returns as soon as the run answers and the record follows moments later.
A third variant skips the wait and decides 200 ms after the pause, as any person does: by then
the pause's record is written anyway, which is what a resume's time depends on (see RESULTS.md).
Both interleaved on one dev server, one worker, one PostgreSQL (BENCH_DATABASE_URL, else an
embedded one), in the same run; (a), the bare signal -> activity floor, beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from temporalio.worker import Worker

from bench import floors
from bench.common import floor_a, pct, stack
from hitl._core import records as _records
from hitl.dev import stack as devstack
from hitl.worker import create_worker


async def main(runs: int, fast_transfer: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("BENCH_DATABASE_URL", devstack.postgres_url(Path(tmp) / "pg"))
        from bench import audited_agents

        audited_agents.agent.db.migrate()
        async with stack(fast_transfer) as (client, address, server):
            os.environ["OPENAI_BASE_URL"] = server.base_url
            agent = audited_agents.agent
            agent._overrides["temporal_address"] = address
            bare = Worker(client, task_queue="bench-bare", workflows=[floors.SignalThenActivity],
                          activities=[floors.noop])
            settled = _records.settled

            async def no_wait(*args: object, **kwargs: object) -> None:  # the wait skipped
                return None

            variants = {"waiting": (settled, 0.0), "not waiting": (no_wait, 0.0),
                        "not waiting, decided 200 ms later": (no_wait, 0.2)}
            timings: dict[str, list[float]] = {f"{step}, {v}": [] for step in ("pause", "resume") for v in variants}
            timings["(a)"] = []
            async with create_worker(client, audited_agents.QUEUE), bare:
                for i in range(runs + 10):  # the first 10 warm up
                    order = list(variants)
                    for label in order[i % 3:] + order[:i % 3]:
                        wait, later = variants[label]
                        _records.settled = wait  # type: ignore[assignment]
                        t0 = time.perf_counter()
                        paused = await agent.arun("refund o-1")
                        t1 = time.perf_counter()
                        await asyncio.sleep(later)  # a person decides after the record is written anyway
                        paused.active_requirements[0].confirm()
                        t2 = time.perf_counter()
                        done = await agent.acontinue_run(paused.run_id, paused.requirements)
                        t3 = time.perf_counter()
                        assert done.content == "done: refunded o-1", done
                        if i >= 10:
                            timings[f"pause, {label}"].append((t1 - t0) * 1000)
                            timings[f"resume, {label}"].append((t3 - t2) * 1000)
                    a = await floor_a(client)
                    if i >= 10:
                        timings["(a)"].append(a)
            _records.settled = settled  # type: ignore[assignment]
    floor = pct(timings["(a)"], 50)
    print(f"{runs} runs, audited agent; p50 / p90 ms, and p50 / (a) p50 ({floor:.1f} ms)")
    for name, values in timings.items():
        print(f"  {name:42s} {pct(values, 50):7.1f} {pct(values, 90):7.1f}   {pct(values, 50) / floor:5.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--fast-transfer", action="store_true", help="raise the dev server's transfer poll rate")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.fast_transfer))
