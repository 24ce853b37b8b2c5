"""Agents served by a worker subprocess in the heartbeat tests (``worker.py --agents tests.heartbeat_agents``).

The tool appends to the file named by ``HITL_TEST_LOG``; the model is the scripted server at ``OPENAI_BASE_URL``.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

from hitl import Agent, OpenAIChat, tool

QUEUE = "hitl-heartbeat-tests"
SCRIPTS = {
    "heartbeat-long-charge": {"rules": [{"turns": [
        {"tool_calls": [{"name": "long_charge", "arguments": {"amount": 7}}]}, {"content": "{results}"}]}]},
}


def _log(line: str) -> None:
    with open(os.environ["HITL_TEST_LOG"], "a") as f:
        f.write(line + "\n")


@tool(requires_confirmation=True, idempotent=False, timeout=timedelta(minutes=2))
def long_charge(amount: int) -> str:
    """Charge a card slowly (not idempotent; its own timeout, two minutes, is far beyond its heartbeat's)."""
    _log(f"long_charge start {amount}")
    time.sleep(60)
    _log(f"long_charge end {amount}")
    return f"charged {amount}"


long_charge_agent = Agent(OpenAIChat("heartbeat-long-charge"), name="heartbeat-long-charge", tools=[long_charge],
                          task_queue=QUEUE)
