"""Servers and numbers shared by the benchmarks."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.client import Client

from bench import agents, floors
from hitl._core import client as _client
from hitl.dev import stack as devstack
from hitl.settings import Settings
from hitl.testing import ScriptedModelServer


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(name: str, ms: list[float]) -> str:
    return f"{name:<44} p50 {pct(ms, 50):7.1f} ms   p99 {pct(ms, 99):7.1f} ms   mean {statistics.mean(ms):7.1f} ms  (n={len(ms)})"


@asynccontextmanager
async def stack(fast_transfer: bool) -> AsyncIterator[tuple[Client, str, ScriptedModelServer]]:
    """A fresh dev server (default dynamic config unless fast_transfer) and the scripted model."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = devstack.start_temporal(Path(tmp) / "bench.db", fast_transfer=fast_transfer)
        server = ScriptedModelServer(scripts={"bench-script": agents.SCRIPT, "bench-leader": agents.LEADER_SCRIPT}).start()
        address = f"127.0.0.1:{port}"
        try:
            client = await _client.connect(Settings.from_env(temporal_address=address))
            yield client, address, server
        finally:
            server.stop()
            devstack.stop(proc)


async def floor_a(client: Client, task_queue: str = "bench-bare") -> float:
    """(a) one bare signal -> activity -> result, in ms (a worker runs ``floors.SignalThenActivity`` on the queue)."""
    handle = await client.start_workflow(floors.SignalThenActivity.run, id=f"a-{uuid.uuid4()}", task_queue=task_queue)
    await asyncio.sleep(0.01)  # let the first task settle so the signal starts the clock alone
    started = time.perf_counter()
    await handle.signal(floors.SignalThenActivity.decide)
    await handle.result()
    return (time.perf_counter() - started) * 1000


async def floor_b(client: Client, task_queue: str = "bench-bare") -> float:
    """(b) one bare update round trip that runs nothing, in ms (``floors.BareUpdate``)."""
    handle = await client.start_workflow(floors.BareUpdate.run, id=f"b-{uuid.uuid4()}", task_queue=task_queue)
    await handle.execute_update(floors.BareUpdate.ping)  # first task done
    started = time.perf_counter()
    await handle.execute_update(floors.BareUpdate.ping)
    elapsed = (time.perf_counter() - started) * 1000
    await handle.signal(floors.BareUpdate.finish)
    return elapsed
