"""The agent and the bare workflows the benchmarks run."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

from hitl import Agent, OpenAIChat, tool
from hitl.team import Team

QUEUE = "hitl-bench"
SCRIPT = {"rules": [{"turns": [
    {"tool_calls": [{"name": "approve_refund", "arguments": {"order_id": "o-1"}}]},
    {"content": "done: {results}"}]}]}


@tool(requires_confirmation=True)
def approve_refund(order_id: str) -> str:
    """Refund an order."""
    return f"refunded {order_id}"


agent = Agent(OpenAIChat("bench-script"), name="bench-agent", tools=[approve_refund], task_queue=QUEUE)

LEADER_SCRIPT = {"rules": [{"turns": [
    {"tool_calls": [{"name": "delegate_task_to_member", "arguments": {"member_id": "bench-member", "task": "refund o-1"}}]},
    {"content": "team: {results}"}]}]}
member = Agent(OpenAIChat("bench-script"), name="bench-member", tools=[approve_refund], task_queue=QUEUE)
team = Team(agents=[member], model=OpenAIChat("bench-leader"), name="bench-team", task_queue=QUEUE)


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
