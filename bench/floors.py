"""The bare reference workflows the benchmarks compare with: nothing but temporalio.

Kept apart from bench.agents so that Temporal's sandbox, which imports a workflow's module for
every run, loads only this for the floors and not hitl as well.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench.noop")
async def noop(x: str) -> str:
    return x


@workflow.defn(name="BenchSignalActivity")
class SignalThenActivity:
    """Reference (a): wait for a signal, run one activity, complete."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return await workflow.execute_activity(noop, "x", start_to_close_timeout=timedelta(seconds=30))

    @workflow.signal
    def decide(self) -> None:
        self.go = True


@workflow.defn(name="BenchUpdate")
class BareUpdate:
    """Reference (b): an update round trip that runs nothing."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.update
    def ping(self) -> int:
        return 1

    @workflow.signal
    def finish(self) -> None:
        self.done = True


@activity.defn(name="bench.noop_local")
async def noop_local(x: str) -> str:
    return x


@workflow.defn(name="BenchUpdateEagerTool")
class UpdateEagerTool:
    """Reference (c): exactly once by construction, bare. An update whose handler runs the "tool" as a
    remote activity (scheduled by the task that accepted the update, so it starts once that is
    committed; eager, so it skips the task queue on the way out), then the "model" as a local
    activity, and returns."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.update
    async def decide(self) -> str:
        tool = await workflow.execute_activity(noop, "tool", start_to_close_timeout=timedelta(seconds=30))
        return await workflow.execute_local_activity(noop_local, tool, start_to_close_timeout=timedelta(seconds=30))

    @workflow.update
    def ping(self) -> int:
        return 1

    @workflow.signal
    def finish(self) -> None:
        self.done = True
