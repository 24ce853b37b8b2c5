"""Serve agents: ``python worker.py --agents my_pkg.my_module [--agents other.module]``.

Every Agent defined at the top level of those modules is served on its task queue.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

import activities
from hitl import _client
from hitl.agent import Agent
from hitl.config import Settings
from hitl.visibility import register_search_attributes
from workflows import AgentRunWorkflow


def agents_in(module_names: Iterable[str]) -> list[Agent]:
    """The Agents defined at the top level of the named modules (importing them registers them)."""
    found: list[Agent] = []
    for name in module_names:
        module = importlib.import_module(name)
        found.extend(v for v in vars(module).values() if isinstance(v, Agent) and v not in found)
    return found


def create_worker(client: Client, task_queue: str, *, max_cached_workflows: int | None = None) -> Worker:
    """A worker for the run workflow and its activities on ``task_queue``.

    ``max_cached_workflows`` (default ``HITL_MAX_CACHED_WORKFLOWS`` or 500) bounds memory: a paused
    run evicted from the cache costs nothing until a decision replays it from its history.
    """
    _compile_workflow_modules()
    if max_cached_workflows is None:
        max_cached_workflows = int(os.environ.get("HITL_MAX_CACHED_WORKFLOWS", "500"))
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[AgentRunWorkflow],
        activities=activities.ALL,
        # Sync tools run through asyncio.to_thread; the executor is for any sync activity added later.
        activity_executor=ThreadPoolExecutor(max_workers=16),
        max_cached_workflows=max_cached_workflows,
    )


def _compile_workflow_modules() -> None:
    """Write bytecode for the workflow modules, whatever PYTHONDONTWRITEBYTECODE says.

    Temporal's sandbox imports the workflow's module afresh for every run it starts or replays;
    without a .pyc each of those compiles the source again, which dominated a worker's CPU.
    """
    import compileall

    import workflows

    for path in workflows.__path__:
        try:
            compileall.compile_dir(path, quiet=2, workers=1)
        except OSError:  # a read-only install: it only costs speed
            pass


async def serve(module_names: Sequence[str], settings: Settings) -> None:
    agents = agents_in(module_names)
    if not agents:
        raise SystemExit(f"no Agent found in {list(module_names)}")
    client = await _client.connect(settings)
    await register_search_attributes(client)
    queues = sorted({a.task_queue for a in agents})
    workers = [create_worker(client, q) for q in queues]
    logging.info("serving %s on %s at %s", [a.name for a in agents], queues, settings.temporal_address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with _all(workers):
        print("worker ready", flush=True)
        await stop.wait()


class _all:
    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers

    async def __aenter__(self) -> None:
        for w in self.workers:
            await w.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        for w in reversed(self.workers):
            await w.__aexit__(None, None, None)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", action="append", required=True, metavar="MODULE", help="module defining Agents")
    parser.add_argument("--address", help="Temporal address (default TEMPORAL_ADDRESS or localhost:7233)")
    parser.add_argument("--namespace", help="Temporal namespace (default TEMPORAL_NAMESPACE or default)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args.agents, Settings.from_env(temporal_address=args.address, namespace=args.namespace)))


if __name__ == "__main__":
    main()
