"""Agents served by worker subprocesses in the durability tests (``worker.py --agents tests.crash_agents``).

Tools append to the file named by ``HITL_TEST_LOG`` so the test can see, across processes, how
often each ran. The model is the scripted server at ``OPENAI_BASE_URL``.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

from hitl import Agent, OpenAIChat, PostgresDb, tool
from hitl.approval import approval
from hitl.notify import Notification
from hitl.policy import escalate, remind
from hitl.team import Team

QUEUE = "hitl-durability-tests"
SCRIPTS = {
    "crash-ship": {"rules": [{"turns": [
        {"tool_calls": [{"name": "ship", "arguments": {"order_id": "o-1"}}]}, {"content": "{results}"}]}]},
    "crash-slow": {"rules": [{"turns": [
        {"tool_calls": [{"name": "slow_write", "arguments": {"key": "k"}}]}, {"content": "{results}"}]}]},
    "crash-escalate": {"rules": [{"turns": [
        {"tool_calls": [{"name": "wire", "arguments": {"amount": 9}}]}, {"content": "{results}"}]}]},
    "crash-charge": {"rules": [{"turns": [
        {"tool_calls": [{"name": "charge", "arguments": {"amount": 42}}]}, {"content": "{results}"}]}]},
    "crash-team-leader": {"rules": [{"turns": [
        {"tool_calls": [{"name": "delegate_task_to_member", "arguments": {"member_id": "crash-shipper", "task": "ship o-7"}}]},
        {"content": "Team: {results}"}]}]},
    "crash-shipper": {"rules": [{"match": "ship (\\S+)", "turns": [
        {"tool_calls": [{"name": "ship", "arguments": {"order_id": "{1}"}}]}, {"content": "Shipper: {results}"}]}]},
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


async def log_notification(notification: Notification) -> None:
    _log(f"notified {notification.kind} level {notification.escalation_level}")


@approval(approvers=["alice"], timeout=timedelta(seconds=9),
          escalation=[remind(after=timedelta(seconds=2)), escalate(after=timedelta(seconds=5), to=["bob"])])
@tool(requires_confirmation=True)
def wire(amount: int) -> str:
    """Wire money (reminds, escalates, expires)."""
    _log(f"wire {amount}")
    return f"wired {amount}"


escalate_agent = Agent(OpenAIChat("crash-escalate"), name="crash-escalate", tools=[wire], task_queue=QUEUE,
                       notifiers=[log_notification])
ship_agent = Agent(OpenAIChat("crash-ship"), name="crash-ship", tools=[ship], task_queue=QUEUE)
slow_agent = Agent(OpenAIChat("crash-slow"), name="crash-slow", tools=[slow_write], task_queue=QUEUE)
charge_agent = Agent(OpenAIChat("crash-charge"), name="crash-charge", tools=[charge], task_queue=QUEUE)
shipper = Agent(OpenAIChat("crash-shipper"), name="crash-shipper", role="Ships orders", tools=[ship], task_queue=QUEUE)
shipping_team = Team(agents=[shipper], model=OpenAIChat("crash-team-leader"), name="crash-shipping-team", task_queue=QUEUE)

SCRIPTS["crash-vault"] = {"rules": [{"match": r"pay (\d+)", "turns": [
    {"tool_calls": [{"name": "pay_out", "arguments": {"amount": "{num:1}"}}]}, {"content": "{results}"}]}]}


@tool(requires_confirmation=True, idempotent=False)
def pay_out(amount: int) -> str:
    """Pay money out (never twice)."""
    _log(f"pay_out start {amount}")
    time.sleep(float(os.environ.get("HITL_PAY_SECONDS", "0")))
    _log(f"pay_out end {amount}")
    return f"paid {amount}"


vault_agent = Agent(OpenAIChat("crash-vault"), name="crash-vault", tools=[pay_out], task_queue=QUEUE,
                    db=PostgresDb(approvals_table="crash_approvals"))
