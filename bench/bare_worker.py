"""A worker for the bare reference workflows: ``python -m bench.bare_worker ADDRESS``."""

from __future__ import annotations

import asyncio
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from bench import floors


async def main(address: str) -> None:
    client = await Client.connect(address)
    async with Worker(client, task_queue="bench-bare", workflows=[floors.SignalThenActivity, floors.BareUpdate],
                      activities=[floors.noop]):
        print("worker ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
