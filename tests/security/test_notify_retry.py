"""Notifications retried notifier by notifier, with the same one-click links on every attempt, against the real stack."""

from __future__ import annotations

import asyncio
import time

from hitl.activities.notify import notifier_name
from hitl.notify import Notification
from hitl.security import links
from hitl.security.links import LinkSettings
from tests.security.test_links import SECRET, link_service, path  # noqa: F401 - fixture: the service and this process's links
from tests.service.test_service import paused, pay, pays


class Recorder:
    """A notifier that keeps every notification it is given, and fails the first ``failures`` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[Notification] = []
        self.failures = failures

    async def __call__(self, notification: Notification) -> None:
        self.calls.append(notification)
        if len(self.calls) <= self.failures:
            raise RuntimeError("the receiver is down for now")


async def calls(recorder: Recorder, count: int, within: float = 30.0) -> list[Notification]:
    deadline = time.monotonic() + within
    while len(recorder.calls) < count:
        assert time.monotonic() < deadline, f"{len(recorder.calls)} calls, not {count}"
        await asyncio.sleep(0.05)
    return recorder.calls


def urls(notification: Notification) -> list[tuple[str, str, str]]:
    return [(link.approver, link.decision, link.url) for link in notification.links]


async def test_a_notifier_that_fails_once_is_retried_alone_with_the_same_links(
        make_agent, script, running_worker, db, client, link_service):
    """Two notifiers take the notification, a third fails once: the retry calls only the third, with the first links."""
    first, second, flaky = Recorder(), Recorder(), Recorder(failures=1)
    agent = make_agent(pays(script, 10), [pay], db=db, notifiers=[first, second, flaky])
    async with running_worker():
        run, _ = await paused(agent, db)
        await calls(flaky, 1)
        # Between the attempts, the activity's heartbeat holds the names of the notifiers that are done, no link.
        details = b""
        for _ in range(100):
            [pending] = (await client.get_workflow_handle(run.run_id).describe()).raw_description.pending_activities \
                or [None]
            if pending is not None and pending.heartbeat_details.payloads:
                details = b"".join(p.data for p in pending.heartbeat_details.payloads)
                break
            await asyncio.sleep(0.05)
        [before, after] = await calls(flaky, 2)  # NOTIFY_RETRY waits 2 s before the second attempt
        await asyncio.sleep(0.5)  # time enough for a third call, were one made
    assert len(first.calls) == len(second.calls) == 1 and len(flaky.calls) == 2
    assert notifier_name(0, first).encode() in details and notifier_name(1, second).encode() in details
    assert notifier_name(2, flaky).encode() not in details and b"/links/" not in details
    assert len(urls(before)) == 4 and urls(before) == urls(after) == urls(first.calls[0]) == urls(second.calls[0])


async def test_the_link_a_retry_resends_is_the_one_already_used(make_agent, script, running_worker, db, link_service):
    """alice approves with the first attempt's link; the retry's copy of it is the same link, so it answers 409."""
    flaky = Recorder(failures=1)
    agent = make_agent(pays(script, 10), [pay], db=db, notifiers=[flaky])
    async with running_worker(), link_service.client() as http:
        await paused(agent, db)
        [before] = await calls(flaky, 1)
        assert (await http.post(path(before.links_for("alice")["approved"]))).status_code == 200
        [_, after] = await calls(flaky, 2)
        again = await http.post(path(after.links_for("alice")["approved"]))
        assert again.status_code == 409 and "already been used" in again.text, again.text
        assert (await http.post(path(after.links_for("bob")["rejected"]))).status_code == 409  # decided by alice


def test_links_are_a_function_of_the_notification_and_its_key():
    """The same notification and key make the same links; another key or a later notification makes other ids."""
    settings = LinkSettings(secret=SECRET, public_url="https://hitl.example.com")
    now = time.time()
    notification = Notification(kind="requested", run_id="run-1", agent_name="a", requirement_id="req-1", tool_name="pay",
                                arguments={"amount": 1}, approvers=["alice", "bob"], at=now - 5)
    made = links.links_for(notification, settings, key="wf/run/1")
    assert made == links.links_for(notification, settings, key="wf/run/1", now=now + 60)
    ids = {links.verify_token(SECRET, path(link.url).removeprefix("/links/")).link_id for link in made}
    assert len(ids) == 4 and all(link.expires_at == int(now - 5 + settings.ttl_seconds) for link in made)
    for other in (links.links_for(notification, settings, key="wf/run/2"),
                  links.links_for(notification.model_copy(update={"kind": "reminder", "at": now}), settings, key="wf/run/1")):
        assert ids.isdisjoint(links.verify_token(SECRET, path(link.url).removeprefix("/links/")).link_id for link in other)
    rotated = LinkSettings(secret=SECRET + "-rotated", public_url="https://hitl.example.com")
    assert {link.url for link in made}.isdisjoint(link.url for link in links.links_for(notification, rotated, key="wf/run/1"))
