"""Agents served by worker subprocesses in the durability tests (``worker.py --agents tests.crash_agents``).

Tools append to the file named by ``HITL_TEST_LOG`` so the test can see, across processes, how
often each ran. The model is the scripted server at ``OPENAI_BASE_URL``.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

from hitl import Agent, OpenAIChat, tool

QUEUE = "hitl-durability-tests"
SCRIPTS = {
    "crash-ship": {"rules": [{"turns": [
        {"tool_calls": [{"name": "ship", "arguments": {"order_id": "o-1"}}]}, {"content": "{results}"}]}]},
    "crash-slow": {"rules": [{"turns": [
        {"tool_calls": [{"name": "slow_write", "arguments": {"key": "k"}}]}, {"content": "{results}"}]}]},
    "crash-charge": {"rules": [{"turns": [
        {"tool_calls": [{"name": "charge", "arguments": {"amount": 42}}]}, {"content": "{results}"}]}]},
}


def _log(line: str) -> None:
    with open(os.environ["HITL_TEST_LOG"], "a") as f:
        f.write(line + "\n")


@tool(requires_confirmation=True)
def ship(order_id: str) -> str:
    """Ship an order."""
    _log(f"ship {order_id}")
    return f"shipped {order_id}"


@tool(requires_confirmation=True)
def slow_write(key: str) -> str:
    """Write slowly (idempotent: writing the same key twice is harmless)."""
    _log(f"slow_write start {key}")
    time.sleep(float(os.environ.get("HITL_SLOW_SECONDS", "4")))
    _log(f"slow_write end {key}")
    return f"wrote {key}"


@tool(requires_confirmation=True, idempotent=False, timeout=timedelta(seconds=3))
def charge(amount: int) -> str:
    """Charge a card (not idempotent: never retried blindly)."""
    _log(f"charge start {amount}")
    time.sleep(float(os.environ.get("HITL_SLOW_SECONDS", "4")))
    _log(f"charge end {amount}")
    return f"charged {amount}"


ship_agent = Agent(OpenAIChat("crash-ship"), name="crash-ship", tools=[ship], task_queue=QUEUE)
slow_agent = Agent(OpenAIChat("crash-slow"), name="crash-slow", tools=[slow_write], task_queue=QUEUE)
charge_agent = Agent(OpenAIChat("crash-charge"), name="crash-charge", tools=[charge], task_queue=QUEUE)
