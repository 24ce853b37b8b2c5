"""What a replay costs: a paused run, evicted, replayed from its history, against (a)'s.

    python -m bench.replay [--replays 1000]

A run the worker's cache evicted is replayed from its whole history when its decision comes;
at 10,000 paused runs nine decisions in ten pay this. Records one paused hitl run and one
paused (a) (``floors.SignalThenActivity``) on a dev server, then replays each history
``--replays`` times with Temporal's ``Replayer`` (outside the sandbox, as the worker runs), one
after the other in this process, and reports wall and CPU time per replay, events and bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import time
import uuid

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

from bench import agents, floors
from bench.common import stack
from hitl.worker import create_worker
from hitl.workflows import AgentRunWorkflow


async def paused_histories() -> dict[str, WorkflowHistory]:
    async with stack(False) as (client, address, server):
        os.environ["OPENAI_BASE_URL"] = server.base_url
        agents.agent._overrides["temporal_address"] = address
        bare = Worker(client, task_queue="bench-bare", workflows=[floors.SignalThenActivity], activities=[floors.noop])
        async with create_worker(client, agents.QUEUE), bare:
            paused = await agents.agent.arun("refund o-1")
            a = await client.start_workflow(floors.SignalThenActivity.run, id=f"a-{uuid.uuid4()}", task_queue="bench-bare")
            await asyncio.sleep(0.5)  # (a)'s first task done
            return {"hitl": await client.get_workflow_handle(paused.run_id).fetch_history(),
                    "(a)": await a.fetch_history()}


async def replay(history: WorkflowHistory, n: int) -> tuple[float, float]:
    """(wall ms, CPU ms of this process, all threads) per replay."""
    replayer = Replayer(workflows=[AgentRunWorkflow, floors.SignalThenActivity], data_converter=pydantic_data_converter,
                        workflow_runner=UnsandboxedWorkflowRunner())
    copies = [copy.deepcopy(history) for _ in range(n)]

    async def each():
        for h in copies:
            yield h

    wall, cpu = time.perf_counter(), time.process_time()
    async with replayer.workflow_replay_iterator(each()) as results:
        async for result in results:
            assert result.replay_failure is None, result.replay_failure
    return (time.perf_counter() - wall) / n * 1000, (time.process_time() - cpu) / n * 1000


async def main(replays: int) -> None:
    histories = await paused_histories()
    for history in histories.values():
        await replay(history, min(100, replays))  # warm up
    for name, history in histories.items():
        wall, cpu = await replay(history, replays)
        size = sum(e.ByteSize() for e in history.events)
        print(f"{name:<5} paused run: {len(history.events)} events, {size:,} bytes; replay {wall:.2f} ms wall, "
              f"{cpu:.2f} ms CPU (n={replays})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replays", type=int, default=1000)
    asyncio.run(main(parser.parse_args().replays))
