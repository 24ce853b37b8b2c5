"""Reminders, escalation and notifications, on durable timers (time-skipping server) and a real webhook."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hitl import RunStatus
from hitl.notify import Notification, WebhookNotifier, sign
from hitl.policy import escalate, remind
from tests.test_policy import pay_script, payment_tool, skipping, skipping_agent  # noqa: F401 - fixture
from hitl.worker import create_worker

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


async def test_a_decision_before_a_step_cancels_the_later_steps(skipping, model_server, script):
    """Decided after the reminder: no escalation and no expiry follow, however long we wait."""
    seen, notifier = collector()
    agent = skipping_agent(skipping, model_server, pay_script(script), [payment_tool(**PAYMENT_POLICY)],
                           notifiers=[notifier])
    async with create_worker(skipping.client, agent.task_queue):
        paused = await agent.arun("pay acme")
        await skipping.sleep(timedelta(hours=1))
        await until(lambda: len(seen) == 2)
        paused.active_requirements[0].confirm(resolved_by="alice")
        done = await agent.acontinue_run(paused.run_id, paused.requirements)
        await skipping.sleep(timedelta(days=2))
        await asyncio.sleep(0.2)
    assert done.content == "paid 500 to acme"
    assert [n.kind for n in seen] == ["requested", "reminder"]


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
