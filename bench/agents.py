"""The agent and the team the benchmarks run (the bare floors are in bench.floors)."""

from __future__ import annotations

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
