"""An agent whose definition changes between two deploys (``HITL_REDEPLOY=1`` or ``2``), served by worker subprocesses.

It has no ``name=``: its runs are bound to ``tests.redeploy_agents.agent``, where it is defined,
and go to that agent's own task queue.
"""

from __future__ import annotations

import os

from hitl import Agent, OpenAIChat, tool

VERSION = os.environ.get("HITL_REDEPLOY", "1")
SCRIPT = {"rules": [{"turns": [
    {"tool_calls": [{"name": "refund", "arguments": {"order": "o-9"}}, {"name": "archive", "arguments": {"order": "o-9"}}]},
    {"content": "{results}"}]}]}


def _log(line: str) -> None:
    with open(os.environ["HITL_TEST_LOG"], "a") as f:
        f.write(line + "\n")


@tool(requires_confirmation=True)
def refund(order: str) -> str:
    """Refund an order."""
    _log(f"refund {order} v{VERSION}")
    return f"refunded {order} (v{VERSION})"


@tool(requires_confirmation=True)
def archive(order: str) -> str:
    """Archive an order (removed in version 2)."""
    _log(f"archive {order} v{VERSION}")
    return f"archived {order}"


agent = Agent(
    OpenAIChat("redeploy-model"),
    tools=[refund, archive] if VERSION == "1" else [refund],
    instructions=f"You handle refunds. Version {VERSION}.",
)
