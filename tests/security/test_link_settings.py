"""Link settings (the secret's strength, HITL_LINK_TTL), where links may go (webhook payloads), and the link errors' answers."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from hitl.notify import Notification, WebhookNotifier
from hitl.security import links
from hitl.security.links import LinkSettings
from tests.conftest import RunningService
from tests.security.test_links import SECRET, collector, linked_service
from tests.service.test_service import paused, pay, pays


@pytest.fixture
def link_service(db: Any, temporal_server: dict[str, Any]) -> Iterator[RunningService]:
    """The service with a link secret, and this process's workers making links to it."""
    yield from linked_service(db)


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP server on loopback: its URL, and the JSON bodies POSTed to it."""
    bodies: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    finally:
        server.shutdown()
        server.server_close()


async def test_the_webhook_payload_carries_the_links_when_asked(make_agent, script, running_worker, db, link_service):
    """WebhookNotifier(include_links=True)'s JSON has `links`: approver, decision, url and expiry for each link."""
    with webhook_receiver() as (url, bodies):
        agent = make_agent(pays(script, 10), [pay], db=db, notifiers=[WebhookNotifier(url, "hook-secret", include_links=True)])
        async with running_worker():
            await paused(agent, db)
            for _ in range(200):
                if bodies:
                    break
                await asyncio.sleep(0.05)
    [body] = bodies
    assert sorted((x["approver"], x["decision"]) for x in body["links"]) == [
        ("alice", "approved"), ("alice", "rejected"), ("bob", "approved"), ("bob", "rejected")]
    assert all(x["url"].startswith(link_service.url + "/links/") and x["expires_at"] > time.time() for x in body["links"])


async def test_the_webhook_payload_has_no_links_by_default():
    """A WebhookNotifier not asked for links POSTs the notification without them, though it carries some."""
    settings = LinkSettings(secret=SECRET, public_url="https://hitl.example.com")
    notification = Notification(kind="requested", run_id="run-1", agent_name="a", requirement_id="req-1", tool_name="pay",
                                arguments={"amount": 1}, approvers=["alice"], at=time.time())
    notification = notification.model_copy(update={"links": links.links_for(notification, settings)})
    assert notification.links
    with webhook_receiver() as (url, bodies):
        await WebhookNotifier(url, "hook-secret")(notification)
    [body] = bodies
    assert body["tool_name"] == "pay" and "links" not in body and "/links/" not in json.dumps(body)


async def test_a_bad_link_ttl_inside_the_activity_sends_without_links(make_agent, script, running_worker, db,
                                                                      monkeypatch, caplog):
    """A worker built in code with HITL_LINK_TTL=soon: both notifications go out without links, and one warning says why."""
    monkeypatch.setenv("HITL_LINK_SECRET", SECRET)
    monkeypatch.setenv("HITL_PUBLIC_URL", "https://hitl.example.com")
    monkeypatch.setenv("HITL_LINK_TTL", "soon")
    monkeypatch.setattr("hitl.activities.notify._warned", False)
    links.configure(None)
    seen, notifier = collector()
    calls = [{"name": "pay", "arguments": {"amount": a, "to": "bob"}} for a in (10, 20)]  # two approvals at once
    agent = make_agent(script({"turns": [{"tool_calls": calls}, {"content": "{results}"}]}), [pay], db=db,
                       notifiers=[notifier])
    try:
        with caplog.at_level(logging.WARNING, logger="hitl.notify"):
            async with running_worker():
                assert (await agent.arun("pay")).is_paused
                for _ in range(200):
                    if len(seen) >= 2:
                        break
                    await asyncio.sleep(0.05)
    finally:
        links.configure(None)
    assert len(seen) == 2 and all(n.kind == "requested" and n.links == [] for n in seen)
    warnings = [r.getMessage() for r in caplog.records if r.name == "hitl.notify"]
    assert len(warnings) == 1 and "without one-click links" in warnings[0] and "HITL_LINK_TTL='soon'" in warnings[0]
    assert SECRET not in warnings[0]


def test_a_short_link_secret_is_refused_on_the_worker(monkeypatch):
    """HITL_LINK_SECRET under 32 bytes: a ConfigurationError naming it and how to make one, never quoting it."""
    from hitl.errors import ConfigurationError

    monkeypatch.setenv("HITL_LINK_SECRET", "short-but-not-32-bytes")
    with pytest.raises(ConfigurationError, match="HITL_LINK_SECRET") as refused:
        LinkSettings.from_env()
    assert "secrets.token_urlsafe(32)" in str(refused.value) and "short-but-not-32-bytes" not in str(refused.value)
    with pytest.raises(ValueError, match="HITL_LINK_SECRET") as in_code:
        LinkSettings(secret="short-but-not-32-bytes", public_url="https://hitl.example.com")
    assert "short-but-not-32-bytes" not in str(in_code.value)


def test_a_short_link_secret_is_refused_by_the_service(monkeypatch):
    """`hitl serve`'s settings refuse a HITL_LINK_SECRET under 32 bytes, naming it and how to make one, never quoting it."""
    from pydantic import ValidationError

    from hitl.service import ServiceConfig

    monkeypatch.setenv("DATABASE_URL", "postgresql://hitl@127.0.0.1:9/hitl")
    monkeypatch.setenv("HITL_LINK_SECRET", "short-but-not-32-bytes")
    with pytest.raises(ValidationError, match="HITL_LINK_SECRET") as refused:
        ServiceConfig.from_env()
    assert "secrets.token_urlsafe(32)" in str(refused.value) and "short-but-not-32-bytes" not in str(refused.value)
    monkeypatch.setenv("HITL_LINK_SECRET", SECRET)
    assert ServiceConfig.from_env().link_secret is not None


def test_link_errors_answer_alike_on_the_page_and_in_the_json_api():
    """One map for both: expired 410, used 409, invalid 403, links not configured 503."""
    from hitl import errors
    from hitl.service.errors import status_of

    assert links.LinkExpiredError is errors.LinkExpiredError  # the old import path still works
    found = {kind.__name__: status_of(kind("x")) for kind in (errors.LinkExpiredError, errors.LinkUsedError,
                                                              errors.LinkInvalidError, errors.LinksNotConfiguredError)}
    assert found == {"LinkExpiredError": 410, "LinkUsedError": 409, "LinkInvalidError": 403, "LinksNotConfiguredError": 503}


def test_the_link_ttl_reads_durations_and_refuses_nonsense(monkeypatch):
    """HITL_LINK_TTL takes seconds or 90m/24h/7d; anything else is a ConfigurationError naming it."""
    from hitl.errors import ConfigurationError

    for text, seconds in (("3600", 3600), ("90m", 5400), ("24h", 86400), ("7d", 7 * 86400)):
        monkeypatch.setenv("HITL_LINK_TTL", text)
        assert LinkSettings.from_env().ttl_seconds == seconds
    for text in ("soon", "-5", "400d"):
        monkeypatch.setenv("HITL_LINK_TTL", text)
        with pytest.raises(ConfigurationError, match="HITL_LINK_TTL"):
            LinkSettings.from_env()


def test_a_worker_with_a_bad_link_ttl_stops_at_start():
    """`hitl worker` reads the link settings before it serves: a bad HITL_LINK_TTL is an error then, naming it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    hitl = Path(sys.executable).parent / "hitl"
    done = subprocess.run([str(hitl), "worker", "--agents", "examples.quickstart"], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2],
                          env={**os.environ, "HITL_LINK_TTL": "soon", "TEMPORAL_ADDRESS": "127.0.0.1:9"})
    assert done.returncode == 1 and "HITL_LINK_TTL='soon'" in done.stderr, done.stderr


def test_a_link_lasts_until_the_earlier_of_its_ttl_and_the_deadline():
    """With a 24 h TTL, a link on an approval due in an hour expires with it; one due past its deadline gets none."""
    settings = LinkSettings(secret=SECRET, public_url="https://hitl.example.com", ttl_seconds=timedelta(hours=24).total_seconds())
    now = time.time()
    base = dict(kind="requested", run_id="run-1", agent_name="a", requirement_id="req-1", tool_name="pay",
                arguments={"amount": 1}, approvers=["alice"], at=now)
    soon = links.links_for(Notification(**base, deadline=now + 3600), settings, now=now)
    assert {link.expires_at for link in soon} == {int(now + 3600)}
    assert links.links_for(Notification(**base, deadline=now - 1), settings, now=now) == []
    assert {link.expires_at for link in links.links_for(Notification(**base), settings, now=now)} == {int(now + 86400)}
