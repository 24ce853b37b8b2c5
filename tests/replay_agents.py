"""Agents whose recorded histories the replay test replays (see record_histories.py)."""

from __future__ import annotations

from datetime import timedelta

from hitl import Agent, OpenAIChat, PostgresDb, tool
from hitl.approval import ApprovalType, approval
from hitl.policy import escalate, remind
from hitl.team import Team

QUEUE = "hitl-replay-recording"


@tool(requires_confirmation=True)
def pay(amount: int, to: str) -> str:
    """Pay someone."""
    return f"paid {amount} to {to}"


@tool(requires_user_input=True, user_input_fields=["time"])
def book(date: str, time: str) -> str:
    """Book a slot."""
    return f"booked {date} {time}"


@tool(external_execution=True)
def deploy(service: str) -> str:
    """Deploy (done elsewhere)."""
    return "never"


@tool
def lookup(query: str) -> str:
    """Look up."""
    return f"found {query}"


SCRIPT = {"rules": [
    {"match": "batch", "turns": [
        {"tool_calls": [{"name": "pay", "arguments": {"amount": 1, "to": "a"}},
                        {"name": "lookup", "arguments": {"query": "q"}},
                        {"name": "book", "arguments": {"date": "2026-12-01"}},
                        {"name": "deploy", "arguments": {"service": "api"}}]},
        {"content": "{results}"}]},
    {"match": "steps", "turns": [
        *[{"tool_calls": [{"name": "pay", "arguments": {"amount": n, "to": "b"}}]} for n in range(1, 9)],
        {"content": "{results}"}]},
    {"match": "fail", "turns": [{"content": "x", "fail": {"status": 400, "times": 100, "message": "bad request"}}]},
]}

@approval(type=ApprovalType.audit)
@tool
def read_ledger(account: str) -> str:
    """Read a ledger."""
    return f"ledger of {account}"


SCRIPT["rules"].insert(0, {"match": "audited", "turns": [
    {"tool_calls": [{"name": "read_ledger", "arguments": {"account": "acme"}},
                    {"name": "pay", "arguments": {"amount": 9, "to": "c"}}]},
    {"content": "{results}"}]})

@approval(approvers=["alice"], timeout=timedelta(seconds=1))
@tool(requires_confirmation=True)
def guarded_pay(amount: int) -> str:
    """Pay, if alice says so in time."""
    return f"paid {amount}"


SCRIPT["rules"].insert(0, {"match": "guarded", "turns": [
    {"tool_calls": [{"name": "guarded_pay", "arguments": {"amount": 7}}]}, {"content": "{results}"}]})

@approval(approvers=["alice"], timeout=timedelta(seconds=3),
          escalation=[remind(after=timedelta(seconds=1)), escalate(after=timedelta(seconds=2), to=["group:ops"])])
@tool(requires_confirmation=True)
def escalating_pay(amount: int) -> str:
    """Pay, once someone answers."""
    return f"paid {amount}"


SCRIPT["rules"].insert(0, {"match": "escalating", "turns": [
    {"tool_calls": [{"name": "escalating_pay", "arguments": {"amount": 3}}]}, {"content": "{results}"}]})


@approval(approvers=["alice"], timeout=timedelta(minutes=10))
@tool(requires_confirmation=True)
def signed_pay(amount: int) -> str:
    """Pay, once alice's signed decision arrives (strict mode)."""
    return f"paid {amount}"


SCRIPT["rules"].insert(0, {"match": "signed", "turns": [
    {"tool_calls": [{"name": "signed_pay", "arguments": {"amount": 5}}]}, {"content": "{results}"}]})


async def _collect(notification: object) -> None:
    NOTIFIED.append(notification)


NOTIFIED: list[object] = []

audited_agent = Agent(OpenAIChat("replay-script"), name="replay-audited", tools=[pay, read_ledger, guarded_pay, escalating_pay, signed_pay],
                      task_queue=QUEUE, db=PostgresDb(approvals_table="replay_approvals"),
                      notifiers=[_collect])

agent = Agent(OpenAIChat("replay-script"), name="replay-agent", tools=[pay, book, deploy, lookup],
              task_queue=QUEUE, history_event_limit=20)

SCRIPT["rules"].insert(0, {"match": "team task", "turns": [
    {"tool_calls": [{"name": "delegate_task_to_member", "arguments": {"member_id": "replay-member", "task": "member pays"}},
                    {"name": "delegate_task_to_member", "arguments": {"member_id": "replay-member", "task": "member looks"}}]},
    {"content": "team: {results}"}]})
SCRIPT["rules"].insert(0, {"match": "member pays", "turns": [
    {"tool_calls": [{"name": "pay", "arguments": {"amount": 4, "to": "d"}}]}, {"content": "member: {results}"}]})
SCRIPT["rules"].insert(0, {"match": "member looks", "turns": [
    {"tool_calls": [{"name": "lookup", "arguments": {"query": "m"}}]}, {"content": "member: {results}"}]})

member = Agent(OpenAIChat("replay-script"), name="replay-member", tools=[pay, lookup], task_queue=QUEUE)
team = Team(agents=[member], model=OpenAIChat("replay-script"), name="replay-team", task_queue=QUEUE,
            db=PostgresDb(approvals_table="replay_approvals"))
