"""EmailNotifier against a real SMTP server on loopback (aiosmtpd), and its links clicked on the real service."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from hitl.dev import stack
from hitl.errors import ConfigurationError
from hitl.notify import EmailNotifier, Notification
from hitl.run import RunStatus
from hitl.security import links
from tests.conftest import RunningService
from tests.security.test_links import SECRET, linked_service, notices_sent
from tests.service.test_service import RAN, paused, pay, pays
from tests.store.test_audit import settled


class Inbox:
    """aiosmtpd's handler: keeps every message it is given; answers RCPT TO for an address in ``refuse`` with its reply."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802 - aiosmtpd's name
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"

    async def wait(self, count: int) -> None:
        for _ in range(200):
            if len(self.messages) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{len(self.messages)} e-mails came, not {count}")


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on loopback and what it received."""
    inbox, port = Inbox(), stack.free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def link_service(db: Any, temporal_server: dict[str, Any]) -> Iterator[RunningService]:
    """The service with a link secret, and this process's workers making links to it."""
    yield from linked_service(db)


def text_of(message: email.message.EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]


def link_paths(text: str) -> dict[str, str]:
    found = dict(re.findall(r"^(Approve|Reject): https?://[^/\s]+(/links/\S+)$", text, re.M))
    return {"approved": found["Approve"], "rejected": found["Reject"]}


async def test_each_approver_with_an_address_gets_one_email_with_their_own_links(
        make_agent, script, running_worker, db, link_service, smtp, client):
    """alice (who has an address) gets one e-mail naming the tool and agent, with her links; bob (none) gets nothing."""
    inbox, port = smtp
    notifier = EmailNotifier("127.0.0.1", port, "hitl@example.com", recipients={"alice": "alice@example.com"})
    agent = make_agent(pays(script, 10), [pay], db=db, notifiers=[notifier])
    async with running_worker():
        run, approval_id = await paused(agent, db)
        await inbox.wait(1)
        # The run has sent its one notification (the SMTP server took every e-mail of it before it finished):
        # a second e-mail, were one sent, would be in the inbox now.
        assert await notices_sent(client, run.run_id) == 1
    [(to, message)] = inbox.messages
    assert to == ["alice@example.com"] and message["To"] == "alice@example.com"
    assert "pay" in message["Subject"] and agent.name in message["Subject"]
    text = text_of(message)
    assert approval_id in text and '"amount": 10' in text and "bearer" not in text.lower()
    claims = {d: links.verify_token(SECRET, p.removeprefix("/links/")) for d, p in link_paths(text).items()}
    assert {(c.approver, c.decision) for c in claims.values()} == {("alice", "approved"), ("alice", "rejected")}
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert claims["approved"].link_id and link_paths(text)["approved"] in html


async def test_the_emailed_link_decides_once_after_a_get_that_changes_nothing(
        make_agent, script, running_worker, db, link_service, smtp):
    """GET the e-mailed approve link: still pending and paused; POST it: decided by alice, the run completes; again: 409."""
    inbox, port = smtp
    notifier = EmailNotifier("127.0.0.1", port, "hitl@example.com", recipients=lambda name: f"{name}@example.com")
    agent = make_agent(pays(script, 10), [pay], db=db, notifiers=[notifier])
    async with running_worker(), link_service.client() as http:
        run, approval_id = await paused(agent, db)
        await inbox.wait(2)
        [alice] = [m for to, m in inbox.messages if to == ["alice@example.com"]]
        url = link_paths(text_of(alice))["approved"]
        RAN.clear()
        assert (await http.get(url)).status_code == 200
        assert db.get_approval(approval_id)["status"] == "pending" and (await agent.aget_run(run.run_id)).is_paused
        r = await http.post(url)
        assert r.status_code == 200 and "as alice" in r.text, r.text
        again = await http.post(url)
        assert again.status_code == 409 and "already been used" in again.text, again.text
        await settled(db, run.run_id, 1, "approved")
        assert (await agent.aget_run(run.run_id)).status == RunStatus.completed
    assert db.get_approval(approval_id)["resolved_by"] == "alice" and RAN == [{"amount": 10, "to": "bob"}]
    # The POST after the GET decided it, once: the GET decided nothing (else the POST would have found it used).
    assert [e["kind"] for e in db.get_approval_events(approval_id)] == ["requested", "confirmed"]


async def test_without_link_settings_the_email_still_goes_out_without_links(make_agent, script, running_worker, db, smtp):
    """A worker with no link secret: the e-mail tells the approver, and carries no link."""
    inbox, port = smtp
    links.configure(links.LinkSettings())
    try:
        notifier = EmailNotifier("127.0.0.1", port, "hitl@example.com", recipients={"bob": "bob@example.com"})
        agent = make_agent(pays(script, 10), [pay], db=db, notifiers=[notifier])
        async with running_worker():
            await paused(agent, db)
            await inbox.wait(1)
    finally:
        links.configure(None)
    [(to, message)] = inbox.messages
    assert to == ["bob@example.com"] and "/links/" not in message.as_string() and "pay" in text_of(message)


def three_approvers() -> Notification:
    """A notification for ann, bob and cy (named by their addresses), with their one-click links."""
    notification = Notification(kind="requested", run_id="run-1", agent_name="payments", requirement_id="req-1",
                                tool_name="pay", arguments={"amount": 10},
                                approvers=[f"{n}@example.com" for n in ("ann", "bob", "cy")], at=time.time())
    made = links.links_for(notification, links.LinkSettings(secret=SECRET, public_url="https://hitl.example.com"))
    return notification.model_copy(update={"links": made})


async def test_an_address_refused_for_good_is_skipped_and_the_others_get_their_mail(smtp):
    """The server answers 550 for bob: ann and cy still get theirs, and the notifier does not raise (a retry cannot help)."""
    inbox, port = smtp
    inbox.refuse["bob@example.com"] = "550 5.1.1 no such user"
    await EmailNotifier("127.0.0.1", port, "hitl@example.com")(three_approvers())
    assert sorted(to for to, _ in inbox.messages) == [["ann@example.com"], ["cy@example.com"]]


async def test_a_refusal_for_good_is_logged_without_links(smtp, caplog):
    """The 550 for bob is logged with his address and the server's code, and no link or token."""
    inbox, port = smtp
    inbox.refuse["bob@example.com"] = "550 5.1.1 no such user"
    notification = three_approvers()
    with caplog.at_level(logging.WARNING, logger="hitl.notify"):
        await EmailNotifier("127.0.0.1", port, "hitl@example.com")(notification)
    [line] = [r.getMessage() for r in caplog.records if r.name == "hitl.notify"]
    assert "bob@example.com" in line and "550" in line and "/links/" not in line
    assert not any(link.url.rsplit(".", 1)[1] in line for link in notification.links)


async def test_a_refusal_for_now_raises_once_the_others_got_their_mail(smtp):
    """The server answers 451 for bob: ann and cy get theirs, then the notifier raises naming bob, so Temporal retries."""
    inbox, port = smtp
    inbox.refuse["bob@example.com"] = "451 4.3.0 try again later"
    with pytest.raises(RuntimeError, match=r"1 of 3 approvers failed for now: bob@example\.com") as failed:
        await EmailNotifier("127.0.0.1", port, "hitl@example.com")(three_approvers())
    assert sorted(to for to, _ in inbox.messages) == [["ann@example.com"], ["cy@example.com"]]
    assert "/links/" not in str(failed.value)


def test_a_login_without_tls_is_refused_at_construction():
    """username/password without starttls or ssl would cross the network in clear text: ConfigurationError."""
    for credentials in ({"username": "hitl", "password": "s3cret-pw"}, {"username": "hitl"}, {"password": "s3cret-pw"}):
        with pytest.raises(ConfigurationError, match="clear text") as refused:
            EmailNotifier("smtp.example.com", 587, "hitl@example.com", **credentials)
        assert "s3cret-pw" not in str(refused.value)


def test_the_smtp_password_is_never_in_the_repr():
    """repr(EmailNotifier) names the server and sender, never the password."""
    notifier = EmailNotifier("smtp.example.com", 587, "hitl@example.com", username="hitl", password="s3cret-pw",
                             starttls=True)
    assert "s3cret-pw" not in repr(notifier) and "s3cret-pw" not in str(vars(notifier))
    assert "smtp.example.com" in repr(notifier)


def test_approvers_are_their_own_addresses_when_no_recipients_are_given():
    """recipients=None: an approver named like an address is mailed there; other names and groups are skipped."""
    notifier = EmailNotifier("127.0.0.1", 25, "hitl@example.com")
    assert [notifier.address_of(n) for n in ("ann@example.com", "bob", "group:ops@x")] == ["ann@example.com", None, None]
