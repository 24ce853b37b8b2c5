"""Resume latency: a decision sent until the run's next pause or end, against two floors.

    python -m bench.resume_latency [--runs 200] [--fast-transfer]

hitl: continue_run on a paused run whose confirmed tool runs and whose model then answers.
hitl team: the same decision sent to a team run whose member (a child run) waits for it; then
the member's tool and model, the member's end, and the leader's model.
(a) a bare workflow: signal, one activity, complete; timed from the signal to the result.
(b) a bare update round trip that runs nothing: the floor no Temporal design can beat.
(c) a bare update whose handler runs an eager remote activity (the tool, once the decision is
committed) then a local one (the model): what exactly-once by construction costs at least.
All on one dev server, one worker process, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

from temporalio.worker import Worker

from bench import agents, floors, samples
from bench.common import floor_a, floor_b, pct, stack, summary
from hitl.worker import create_worker


async def main(runs: int, fast_transfer: bool) -> None:
    async with stack(fast_transfer) as (client, address, server):
        os.environ["OPENAI_BASE_URL"] = server.base_url
        agents.agent._overrides["temporal_address"] = address
        agents.team._overrides["temporal_address"] = address
        bare = Worker(client, task_queue="bench-bare",
                      workflows=[floors.SignalThenActivity, floors.BareUpdate, floors.UpdateEagerTool],
                      activities=[floors.noop, floors.noop_local])
        async with create_worker(client, agents.QUEUE), bare:
            hitl_ms, team_ms, a_ms, b_ms, c_ms = [], [], [], [], []
            for i in range(runs + 10):  # the first 10 warm up
                paused = await agents.agent.arun("refund o-1")
                paused.active_requirements[0].confirm()
                t0 = time.perf_counter()
                done = await agents.agent.acontinue_run(paused.run_id, paused.requirements)
                elapsed = (time.perf_counter() - t0) * 1000
                assert done.content == "done: refunded o-1", done

                paused = await agents.team.arun("refund through the team")
                paused.active_requirements[0].confirm()
                t3 = time.perf_counter()
                done = await agents.team.acontinue_run(paused.run_id, paused.requirements)
                team_elapsed = (time.perf_counter() - t3) * 1000
                assert done.content == "team: done: refunded o-1", done

                a_elapsed = await floor_a(client)
                b_elapsed = await floor_b(client)

                h = await client.start_workflow(floors.UpdateEagerTool.run, id=f"c-{uuid.uuid4()}", task_queue="bench-bare")
                await h.execute_update(floors.UpdateEagerTool.ping)  # first task done
                t4 = time.perf_counter()
                await h.execute_update(floors.UpdateEagerTool.decide)
                c_elapsed = (time.perf_counter() - t4) * 1000
                await h.signal(floors.UpdateEagerTool.finish)
                if i >= 10:
                    c_ms.append(c_elapsed)
                    hitl_ms.append(elapsed)
                    team_ms.append(team_elapsed)
                    a_ms.append(a_elapsed)
                    b_ms.append(b_elapsed)
    rows = {
        "hitl resume (decision -> tool -> model -> end)": hitl_ms,
        "hitl team resume (decision -> member's tool, model, end -> leader's model -> end)": team_ms,
        "(a) bare signal -> activity -> result": a_ms,
        "(b) bare update round trip": b_ms,
        "(c) bare update -> eager remote tool -> local model": c_ms,
    }
    print(f"dev server transferProcessorMaxPollRPS: {'raised' if fast_transfer else 'default (20)'}")
    for label, ms in rows.items():
        print(summary(label, ms))
    print(f"ratio hitl/(a) p50: {pct(hitl_ms, 50) / pct(a_ms, 50):.2f}   hitl/(b) p50: {pct(hitl_ms, 50) / pct(b_ms, 50):.2f}"
          f"   hitl/(c) p50: {pct(hitl_ms, 50) / pct(c_ms, 50):.2f}   team/(a) p50: {pct(team_ms, 50) / pct(a_ms, 50):.2f}")
    # the raw samples, for python -m bench.report's picture of these rows
    samples.save("resume_latency", {"fast_transfer": fast_transfer, "runs": runs,
                                    "samples_ms": {label: [round(v, 3) for v in ms] for label, ms in rows.items()}})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--fast-transfer", action="store_true", help="raise the dev server's transfer poll rate")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.fast_transfer))
