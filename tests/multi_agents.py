"""Agents served by several worker processes at once (``worker.py --agents tests.multi_agents``).

Each tool appends ``<tool> <order> <pid>`` to the file named by ``HITL_TEST_LOG``, so a test can
see, across processes, how often each call ran and which worker process ran it.
"""

from __future__ import annotations

import os

from hitl import Agent, OpenAIChat, PostgresDb, tool

QUEUE = "hitl-multi-worker-tests"
TABLE = "multi_approvals"
SCRIPTS = {
    name: {"rules": [{"match": r"order (\S+)", "turns": [
        {"tool_calls": [{"name": tool_name, "arguments": {"order_id": "{1}"}}]}, {"content": "{results}"}]}]}
    for name, tool_name in (("multi-ship", "ship"), ("multi-refund", "refund"))
}


def _log(line: str) -> None:
    with open(os.environ["HITL_TEST_LOG"], "a") as f:
        f.write(f"{line} {os.getpid()}\n")


@tool(requires_confirmation=True)
def ship(order_id: str) -> str:
    """Ship an order (idempotent: shipping it twice is harmless)."""
    _log(f"ship {order_id}")
    return f"shipped {order_id}"


@tool(requires_confirmation=True, idempotent=False)
def refund(order_id: str) -> str:
    """Refund an order (not idempotent: never run twice)."""
    _log(f"refund {order_id}")
    return f"refunded {order_id}"


ship_agent = Agent(OpenAIChat("multi-ship"), name="multi-ship", tools=[ship], task_queue=QUEUE,
                   db=PostgresDb(approvals_table=TABLE))
refund_agent = Agent(OpenAIChat("multi-refund"), name="multi-refund", tools=[refund], task_queue=QUEUE,
                     db=PostgresDb(approvals_table=TABLE))
