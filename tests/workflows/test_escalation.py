"""Reminders, escalation and notifications, on durable timers (time-skipping server) and a real webhook."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hitl import RunStatus, tool
from hitl.approval import approval
from hitl.notify import Notification, WebhookNotifier, sign
from hitl.policy import escalate, remind
from hitl.worker import create_worker
from tests.workflows.test_policy import pay_script, payment_tool, skipping, skipping_agent  # noqa: F401 - fixture

PAYMENT_POLICY = dict(
    approvers=["alice"], timeout=timedelta(days=1),
    escalation=[remind(after=timedelta(minutes=30)), escalate(after=timedelta(hours=4), to=["group:finance"])],
)


def collector() -> tuple[list[Notification], object]:
    seen: list[Notification] = []

    async def notifier(notification: Notification) -> None:
        seen.append(notification)

    return seen, notifier


async def until(predicate, tries: int = 100) -> None:
    for _ in range(tries):
        if predicate():
            return
        await asyncio.sleep(0.02)


async def test_each_step_fires_at_its_time_and_once(skipping, model_server, script):
    """Remind after 30 minutes, escalate to finance after 4 hours, expire after a day: once each."""
    seen, notifier = collector()
    agent = skipping_agent(skipping, model_server, pay_script(script), [payment_tool(**PAYMENT_POLICY)],
                           notifiers=[notifier])
    async with create_worker(skipping.client, agent.task_queue):
        paused = await agent.arun("pay acme")
        await until(lambda: len(seen) == 1)
        assert [n.kind for n in seen] == ["requested"] and seen[0].approvers == ["alice"]
        await skipping.sleep(timedelta(minutes=29))
        assert len(seen) == 1
        await skipping.sleep(timedelta(minutes=2))
        await until(lambda: len(seen) == 2)
        assert seen[1].kind == "reminder" and seen[1].escalation_level == 1
        await skipping.sleep(timedelta(hours=3, minutes=30))
        await until(lambda: len(seen) == 3)
        state = await agent.aget_run(paused.run_id)
        assert seen[2].kind == "escalated" and seen[2].approvers == ["alice", "group:finance"]
        assert state.requirements[0].escalation_level == 2 and state.requirements[0].approvers == ["alice", "group:finance"]
        await skipping.sleep(timedelta(hours=20))
        await until(lambda: len(seen) == 4)
        done = await agent.aget_run(paused.run_id)
    assert [n.kind for n in seen] == ["requested", "reminder", "escalated", "expired"]
    assert done.status == RunStatus.completed and done.requirements[0].resolution == "expired"


@approval(approvers=["alice"], escalation=[remind(after=timedelta(days=2))])
@tool(requires_confirmation=True)
def hold(what: str) -> str:
    """Hold something (reminds after two days: the run stays open past pay's later steps)."""
    return f"held {what}"


async def test_a_decision_before_a_step_cancels_the_later_steps(skipping, model_server, script):
    """Decided after the reminder: no escalation and no expiry follow, though the run stays open past their times."""
    seen, notifier = collector()
    # pay and hold in one turn: deciding pay leaves the pause open, waiting on hold, whose reminder falls due
    # (two days) after pay's escalation (4 hours) and expiry (a day) would have.
    model = script({"turns": [{"tool_calls": [{"name": "pay", "arguments": {"amount": 500, "to": "acme"}},
                                              {"name": "hold", "arguments": {"what": "receipt"}}]},
                              {"content": "{results}"}]})
    agent = skipping_agent(skipping, model_server, model, [payment_tool(**PAYMENT_POLICY), hold],
                           notifiers=[notifier])
    of = lambda tool: [n.kind for n in seen if n.tool_name == tool]  # noqa: E731
    async with create_worker(skipping.client, agent.task_queue):
        paused = await agent.arun("pay acme")
        pay, held = paused.active_requirements
        assert (pay.tool_execution.tool_name, held.tool_execution.tool_name) == ("pay", "hold")
        await skipping.sleep(timedelta(hours=1))
        await until(lambda: of("pay") == ["requested", "reminder"])
        assert of("pay") == ["requested", "reminder"]
        handle = skipping.client.get_workflow_handle(paused.run_id)
        await handle.signal("confirm", {"requirement_id": pay.id, "resolved_by": "alice"})
        for _ in range(100):
            state = await agent.aget_run(paused.run_id)
            if state.requirements[0].resolution is not None:
                break
            await asyncio.sleep(0.02)
        assert state.requirements[0].resolution == "confirmed" and state.is_paused
        await skipping.sleep(timedelta(days=2))  # past pay's escalation and expiry, and hold's reminder
        # The control: hold's reminder comes. Notices go out one by one in the order the run made them, and a
        # step of pay falls due before it, so a step of pay that still fired would have been sent first.
        await until(lambda: of("hold") == ["requested", "reminder"], 250)
        assert of("hold") == ["requested", "reminder"], [(n.tool_name, n.kind) for n in seen]
        assert of("pay") == ["requested", "reminder"]
        state = await agent.aget_run(paused.run_id)
        assert state.is_paused and [r.escalation_level for r in state.requirements] == [1, 1]
        assert state.requirements[0].approvers == ["alice"] and state.requirements[0].resolution == "confirmed"
        held.confirm(resolved_by="alice")
        done = await agent.acontinue_run(paused.run_id, [state.requirements[0], held])
        await skipping.sleep(timedelta(days=2))
        await asyncio.sleep(0.2)
    assert done.content.split(" | ") == ["paid 500 to acme", "held receipt"]
    assert [n.kind for n in seen if n.tool_name == "pay"] == ["requested", "reminder"]
    assert done.requirements[0].resolution == "confirmed" and done.requirements[0].resolved_by == "alice"


async def test_a_notifier_that_always_fails_changes_nothing_else(skipping, model_server, script, database_url):
    """A broken notifier: the run pauses, is decided and completes, and the audit trail is right."""
    from hitl import PostgresDb

    async def broken(notification: Notification) -> None:
        raise ConnectionError("pager service down")

    db = PostgresDb(database_url, approvals_table=f"approvals_{uuid.uuid4().hex[:8]}")
    db.migrate()
    agent = skipping_agent(skipping, model_server, pay_script(script), [payment_tool(**PAYMENT_POLICY)],
                           notifiers=[broken], db=db)
    async with create_worker(skipping.client, agent.task_queue):
        paused = await agent.arun("pay acme")
        await skipping.sleep(timedelta(minutes=40))  # a reminder falls due; its notifier fails too
        paused.active_requirements[0].confirm(resolved_by="alice")
        done = await agent.acontinue_run(paused.run_id, paused.requirements)
        approval_id = f"{paused.run_id}/{paused.requirements[0].id}"
        await until(lambda: (db.get_approval(approval_id) or {}).get("status") == "approved", 200)
    assert done.content == "paid 500 to acme"
    assert [e["kind"] for e in db.get_approval_events(approval_id)] == ["requested", "reminded", "confirmed"]
    db.close()


async def test_webhook_is_signed_with_hmac_over_timestamp_and_body(make_agent, script, running_worker):
    """The built-in webhook POSTs JSON a receiver can verify; the secret never leaves the worker."""
    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = "whsec-test-123"
    webhook = WebhookNotifier(f"http://127.0.0.1:{server.server_address[1]}/hooks/hitl", secret)
    try:
        agent = make_agent(pay_script(script), [payment_tool(approvers=["alice"])], notifiers=[webhook])
        async with running_worker():
            paused = await agent.arun("pay acme")
            await until(lambda: bool(received), 200)
    finally:
        server.shutdown()
        server.server_close()
    headers, body = received[0]
    assert headers["x-hitl-signature"] == sign(secret, headers["x-hitl-timestamp"], body)
    payload = json.loads(body)
    assert payload["kind"] == "requested" and payload["run_id"] == paused.run_id and payload["approvers"] == ["alice"]
    assert secret not in repr(webhook)
