"""One-click decision links: made in the notification activity, shown on GET, decided once on POST, against the real stack."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from hitl import tool
from hitl._wire import NOTIFY, RUN_TOOL
from hitl.approval import approval
from hitl.notify import Notification
from hitl.run import RunStatus
from hitl.security import links, signing
from hitl.security.links import LinkClaims, LinkSettings
from hitl.security.signing import Signer
from tests.conftest import RunningService
from tests.core.test_team import make_team  # noqa: F401 - fixture: a leader with a Researcher and a Trader
from tests.service.test_service import RAN, paused, pay, pays
from tests.store.test_audit import settled

SECRET = "link-secret-for-the-tests-3b1f0c9e"


def linked_service(db: Any) -> Iterator[RunningService]:
    """The service with a link secret, and this process's workers making links to it (for a fixture)."""
    running = RunningService(db, link_secret=SECRET)
    links.configure(LinkSettings(secret=SECRET, public_url=running.url))
    try:
        yield running
    finally:
        links.configure(None)
        running.stop()


@pytest.fixture
def link_service(db: Any, temporal_server: dict[str, Any]) -> Iterator[RunningService]:
    """The service with a link secret, and this process's workers making links to it."""
    yield from linked_service(db)


def collector() -> tuple[list[Notification], Any]:
    seen: list[Notification] = []

    async def notifier(notification: Notification) -> None:
        seen.append(notification)

    return seen, notifier


async def first(seen: list[Notification]) -> Notification:
    for _ in range(200):
        if seen:
            return seen[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no notification came")


def path(url: str) -> str:
    return url[url.index("/links/"):]


def mint(record: dict[str, Any], approver: str, decision: str = "approved", **changes: Any) -> str:
    """A link signed with the service's secret, as the activity would make it (with ``changes``)."""
    claims = dict(approval_id=record["id"], run_id=record["run_id"], requirement_id=record["requirement_id"],
                  decision=decision, arguments_digest=record["arguments_digest"], approver=approver,
                  expires_at=time.time() + 600, link_id=f"test-{time.monotonic_ns()}")
    return f"/links/{links.make_token(SECRET, LinkClaims(**{**claims, **changes}))}"


async def pending_untouched(agent: Any, db: Any, run_id: str, approval_id: str) -> None:
    """Nothing decided: the record pending with only its request on the trail, the run paused, the tool not run.

    Then the control that makes it a check: alice confirms, after what the test sent. Had that decided (or been
    kept as `refused`, or run the tool), her confirmation would be refused as already resolved, or the trail
    would not be just her decision, or the tool would have run twice.
    """
    assert db.get_approval(approval_id)["status"] == "pending"
    assert [e["kind"] for e in db.get_approval_events(approval_id)] == ["requested"]
    assert (await agent.aget_run(run_id)).is_paused and RAN == []
    await decided_first_by_alice(agent, db, run_id, approval_id)


async def decided_first_by_alice(agent: Any, db: Any, run_id: str, approval_id: str) -> None:
    """alice confirms the approval now: hers is its first and only decision, and its tool runs once."""
    run = await agent.aget_run(run_id)
    [req] = [r for r in run.requirements if f"{run_id}/{r.id}" == approval_id]
    req.confirm(resolved_by="alice")
    await agent.acontinue_run(run_id, run.requirements)  # RequirementAlreadyResolvedError had it been decided
    for _ in range(200):
        events = db.get_approval_events(approval_id)
        if len(events) >= 2 and db.get_approval(approval_id)["status"] != "pending":
            break
        await asyncio.sleep(0.05)
    assert [(e["kind"], (e["payload"] or {}).get("resolved_by")) for e in events][1:] == [("confirmed", "alice")], events
    assert [e["kind"] for e in events] == ["requested", "confirmed"]
    record = db.get_approval(approval_id)
    assert record["status"] == "approved" and record["resolved_by"] == "alice"
    assert await tool_runs(agent, run_id) == 1


async def tool_runs(agent: Any, run_id: str) -> int:
    """How many tool calls the run's history has run to completion."""
    tools = set()
    runs = 0
    async for e in (await agent._connect()).get_workflow_handle(run_id).fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED \
                and e.activity_task_scheduled_event_attributes.activity_type.name == RUN_TOOL:
            tools.add(e.event_id)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED \
                and e.activity_task_completed_event_attributes.scheduled_event_id in tools:
            runs += 1
    return runs


async def notices_sent(client: Any, run_id: str, within: float = 10) -> int:
    """Wait until the run has sent every notification it has queued so far; how many it sent.

    Notices go out one at a time, each scheduled by the workflow task that saw the one before finish: so all
    are out once every notify activity has finished and a workflow task has completed since the last.
    """
    finished = (EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
                EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT)
    for _ in range(int(within * 20)):
        scheduled: set[int] = set()
        done: set[int] = set()
        task_since = False
        async for e in client.get_workflow_handle(run_id).fetch_history_events():
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED \
                    and e.activity_task_scheduled_event_attributes.activity_type.name == NOTIFY:
                scheduled.add(e.event_id)
                task_since = False
            elif e.event_type in finished:
                attributes = (e.activity_task_completed_event_attributes, e.activity_task_failed_event_attributes,
                              e.activity_task_timed_out_event_attributes)[finished.index(e.event_type)]
                if attributes.scheduled_event_id in scheduled:
                    done.add(attributes.scheduled_event_id)
                    task_since = False
            elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and done:
                task_since = True
        if scheduled and done == scheduled and task_since:
            return len(scheduled)
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id}: notifications still going out after {within} s ({len(done)} of {len(scheduled)})")


async def test_each_named_approver_gets_an_approve_and_a_reject_link_bound_to_the_approval(
        make_agent, script, running_worker, db, link_service):
    """alice and bob each get two links, signed over this approval, its arguments' digest, the decision and them."""
    seen, notifier = collector()
    agent = make_agent(pays(script, 10), [pay], db=db, notifiers=[notifier])
    async with running_worker():
        _, approval_id = await paused(agent, db)
        notification = await first(seen)
    record = db.get_approval(approval_id)
    made = {(link.approver, link.decision): links.verify_token(SECRET, path(link.url).removeprefix("/links/"))
            for link in notification.links}
    assert sorted(made) == [("alice", "approved"), ("alice", "rejected"), ("bob", "approved"), ("bob", "rejected")]
    for (approver, decision), claims in made.items():
        assert (claims.approver, claims.decision, claims.approval_id) == (approver, decision, approval_id)
        assert claims.arguments_digest == record["arguments_digest"]
        assert claims.expires_at <= record["context"]["deadline"]  # bounded by the approval's one-hour deadline
    assert len({c.link_id for c in made.values()}) == 4
    assert all(link.url.startswith(link_service.url + "/links/") for link in notification.links)


async def test_a_get_shows_the_call_and_changes_nothing(make_agent, script, running_worker, db, link_service):
    """GET (twice, as a mail scanner would) renders the tool, arguments, decision and approver, and decides nothing."""
    seen, notifier = collector()
    agent = make_agent(pays(script, 10), [pay], db=db, notifiers=[notifier])
    async with running_worker(), link_service.client() as http:
        run, approval_id = await paused(agent, db)
        url = path((await first(seen)).links_for("alice")["approved"])
        RAN.clear()
        for _ in range(2):
            r = await http.get(url)
            assert r.status_code == 200, r.text
        page = r.text
        assert "pay" in page and "&quot;amount&quot;: 10" in page and "Approve as alice" in page
        assert '<form method="post">' in page and "<script" not in page
        assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in r.headers["content-security-policy"] and "noindex" in r.headers["x-robots-tag"]
        await pending_untouched(agent, db, run.run_id, approval_id)


async def test_a_post_after_a_scanner_get_decides_as_the_approver_once(make_agent, script, running_worker, db, link_service):
    """After a prefetching GET, the POST decides as alice and the run goes on; the same link again is 409."""
    seen, notifier = collector()
    agent = make_agent(pays(script, 10), [pay], db=db, notifiers=[notifier])
    async with running_worker(), link_service.client() as http:
        run, approval_id = await paused(agent, db)
        url = path((await first(seen)).links_for("alice")["approved"])
        RAN.clear()
        assert (await http.get(url)).status_code == 200
        r = await http.post(url)
        assert r.status_code == 200 and "Approved" in r.text and "as alice" in r.text, r.text
        assert RAN == [{"amount": 10, "to": "bob"}]
        again = await http.post(url)
        assert again.status_code == 409 and "already been used" in again.text, again.text
        await settled(db, run.run_id, 1, "approved")
    assert db.get_approval(approval_id)["resolved_by"] == "alice" and RAN == [{"amount": 10, "to": "bob"}]


async def test_a_rejection_link_carries_the_reason_from_its_form(make_agent, script, running_worker, db, link_service):
    """bob's reject link with a reason: rejected by bob, the reason on the record and told to the model."""
    seen, notifier = collector()
    agent = make_agent(pays(script, 10), [pay], db=db, notifiers=[notifier])
    async with running_worker(), link_service.client() as http:
        run, approval_id = await paused(agent, db)
        url = path((await first(seen)).links_for("bob")["rejected"])
        assert 'name="reason"' in (await http.get(url)).text
        r = await http.post(url, content=b"reason=over+budget%21", headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 200 and "Rejected" in r.text, r.text
        await settled(db, run.run_id, 1, "rejected")
        final = await agent.aget_run(run.run_id)
    record = db.get_approval(approval_id)
    assert record["resolved_by"] == "bob" and record["resolution"]["reason"] == "over budget!"
    assert final.status == RunStatus.completed and "over budget!" in final.content


async def test_an_expired_link_is_refused_with_410_and_decides_nothing(make_agent, script, running_worker, db, link_service):
    """A link whose expiry has passed: 410 on GET and POST, naming when it expired; nothing decided."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), link_service.client() as http:
        run, approval_id = await paused(agent, db)
        url = mint(db.get_approval(approval_id), "alice", expires_at=time.time() - 5)
        RAN.clear()
        for method in (http.get, http.post):
            r = await method(url)
            assert r.status_code == 410 and "expired at" in r.text, r.text
        await pending_untouched(agent, db, run.run_id, approval_id)


async def test_a_tampered_link_is_refused_with_403_and_decides_nothing(make_agent, script, running_worker, db, link_service):
    """A flipped character in the signature, or another approval's id put in a link's claims: 403, nothing decided."""
    agent = make_agent(pays(script, 10, 20), [pay], db=db)
    async with running_worker(), link_service.client() as http:
        run, approval_id = await paused(agent, db)
        token = mint(db.get_approval(approval_id), "alice").removeprefix("/links/")
        head, payload, signature = token.split(".")
        flipped = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["aid"] = f"{run.run_id}/req-2-call_1_0"  # another approval of the run
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        RAN.clear()
        for bad in (f"{head}.{payload}.{flipped}", f"{head}.{forged}.{signature}"):
            r = await http.post(f"/links/{bad}")
            assert r.status_code == 403 and "not one this service made" in r.text, r.text
        await pending_untouched(agent, db, run.run_id, approval_id)


async def test_a_link_made_for_other_arguments_decides_nothing(make_agent, script, running_worker, db, link_service):
    """Validly signed, but over another arguments digest than the approval's: 403, nothing decided."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), link_service.client() as http:
        run, approval_id = await paused(agent, db)
        RAN.clear()
        r = await http.post(mint(db.get_approval(approval_id), "alice", arguments_digest="0" * 64))
        assert r.status_code == 403 and "other arguments" in r.text, r.text
        await pending_untouched(agent, db, run.run_id, approval_id)


async def test_a_link_for_a_non_approver_is_refused_by_the_runs_policy(make_agent, script, running_worker, db, link_service):
    """A link (validly signed) for mallory: 403 from the run, kept as `refused`, nothing decided, the link not spent."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), link_service.client() as http:
        run, approval_id = await paused(agent, db)
        url = mint(db.get_approval(approval_id), "mallory")
        RAN.clear()
        r = await http.post(url)
        assert r.status_code == 403 and "mallory is not among the approvers" in r.text, r.text
        for _ in range(100):
            events = db.get_approval_events(approval_id)
            if any(e["kind"] == "refused" for e in events):
                break
            await asyncio.sleep(0.05)
        assert [e["payload"]["resolved_by"] for e in events if e["kind"] == "refused"] == ["mallory"]
        claims = links.verify_token(SECRET, url.removeprefix("/links/"))
        assert not await links.used(db, claims.link_id)
        assert db.get_approval(approval_id)["status"] == "pending" and RAN == []
        assert (await agent.aget_run(run.run_id)).is_paused


async def test_a_link_after_someone_else_decided_says_who_and_when(make_agent, script, running_worker, db, link_service):
    """bob approves with his link; alice's reject link then answers 409: already decided, approved by bob, at a time."""
    seen, notifier = collector()
    agent = make_agent(pays(script, 10), [pay], db=db, notifiers=[notifier])
    async with running_worker(), link_service.client() as http:
        run, _ = await paused(agent, db)
        notification = await first(seen)
        assert (await http.post(path(notification.links_for("bob")["approved"]))).status_code == 200
        await settled(db, run.run_id, 1, "approved")
        r = await http.post(path(notification.links_for("alice")["rejected"]))
        assert r.status_code == 409 and "already decided: approved by bob at 20" in r.text, r.text


async def test_without_a_link_secret_the_service_refuses_links_with_503(db, service):
    """A service with no HITL_LINK_SECRET: any link is refused with 503, saying why."""
    record = {"id": "run-x/req-1", "run_id": "run-x", "requirement_id": "req-1", "arguments_digest": "0" * 64}
    async with service.client() as http:
        for method in (http.get, http.post):
            r = await method(mint(record, "alice"))
            assert r.status_code == 503 and "HITL_LINK_SECRET" in r.text, r.text


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_link_tokens_never_reach_the_access_log(make_agent, script, running_worker, db, link_service):
    """uvicorn's access log shows /links/[redacted] for a GET and a POST, never the token."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    access = logging.getLogger("uvicorn.access")
    handler, level = _Lines(), access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        async with running_worker(), link_service.client() as http:
            _, approval_id = await paused(agent, db)
            url = mint(db.get_approval(approval_id), "alice")
            assert (await http.get(url)).status_code == 200
            assert (await http.post(url)).status_code == 200
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    token = url.removeprefix("/links/")
    assert sum("/links/[redacted]" in line for line in handler.lines) == 2, handler.lines
    assert not any(token in line or token[-20:] in line for line in handler.lines)


async def test_links_never_enter_the_runs_history(make_agent, script, running_worker, db, link_service, client):
    """The notifier got links, yet the run's history holds no link URL or token."""
    seen, notifier = collector()
    agent = make_agent(pays(script, 10), [pay], db=db, notifiers=[notifier])
    async with running_worker():
        run, _ = await paused(agent, db)
        notification = await first(seen)
        assert await notices_sent(client, run.run_id) == 1  # the notify activity's completion is in history
        history = (await client.get_workflow_handle(run.run_id).fetch_history()).to_json()
    assert notification.links and '"hitl.notify"' in history
    assert "/links/" not in history
    assert not any(link.url.rsplit(".", 1)[1] in history for link in notification.links)


@approval(approvers=["alice", "group:finance"])
@tool(requires_confirmation=True)
def refund(amount: int) -> str:
    """Refund a customer."""
    return f"refunded {amount}"


async def test_group_approvers_get_no_links(make_agent, script, running_worker, db, link_service):
    """A link is for one person: alice gets hers, group:finance none."""
    seen, notifier = collector()
    agent = make_agent(script({"turns": [{"tool_calls": [{"name": "refund", "arguments": {"amount": 3}}]},
                                         {"content": "{results}"}]}), [refund], db=db, notifiers=[notifier])
    async with running_worker():
        await paused(agent, db)
        notification = await first(seen)
    assert notification.approvers == ["alice", "group:finance"]
    assert sorted((link.approver, link.decision) for link in notification.links) == [("alice", "approved"),
                                                                                      ("alice", "rejected")]


@approval(approvers=["alice"])
@tool(requires_user_input=True, user_input_fields=["time"])
def reserve(date: str, time: str) -> str:
    """Reserve a slot (a person fills the time)."""
    return f"reserved {date} {time}"


async def test_an_approval_that_needs_input_gets_only_a_reject_link(make_agent, script, running_worker, db, link_service):
    """A click cannot fill a form: a user-input approval's notification carries a reject link and no approve link."""
    seen, notifier = collector()
    agent = make_agent(script({"turns": [{"tool_calls": [{"name": "reserve", "arguments": {"date": "2026-12-24"}}]},
                                         {"content": "{results}"}]}), [reserve], db=db, notifiers=[notifier])
    async with running_worker():
        await paused(agent, db)
        notification = await first(seen)
    assert [(link.approver, link.decision) for link in notification.links] == [("alice", "rejected")]


async def test_a_link_decides_on_a_strict_worker_as_the_service_signs_it(make_agent, script, running_worker, db,
                                                                          temporal_server, tmp_path):
    """Workers that take only signed decisions: a link's decision, signed by the service's key, is applied as alice."""
    signer = Signer.generate()
    (tmp_path / "service.pem").write_bytes(signer.pem())
    signing.trust([signer])
    running = RunningService(db, link_secret=SECRET, signing_key=str(tmp_path / "service.pem"))
    try:
        agent = make_agent(pays(script, 10), [pay], db=db)
        async with running_worker(), running.client() as http:
            run, approval_id = await paused(agent, db)
            r = await http.post(mint(db.get_approval(approval_id), "alice"))
            assert r.status_code == 200, r.text
            await settled(db, run.run_id, 1, "approved")
    finally:
        signing.trust(None)
        running.stop()
    assert db.get_approval(approval_id)["resolved_by"] == "alice"
    assert not [e for e in db.get_approval_events(approval_id) if e["kind"] == "refused"]


TRADED: list[tuple[str, int]] = []


@approval(approvers=["alice"])
@tool(requires_confirmation=True)
def execute_trade(symbol: str, quantity: int) -> str:
    """Execute a stock trade (alice approves)."""
    TRADED.append((symbol, quantity))
    return f"bought {quantity} {symbol}"


async def test_a_team_members_approval_is_decided_by_its_link(make_team, running_worker, db, link_service):  # noqa: F811
    """The Trader's approval inside a team: alice's link decides it through the team run, and the team completes."""
    seen, notifier = collector()
    team, _, trader = make_team(db=db, trader_tools=[execute_trade])
    trader.notifiers = [notifier]
    TRADED.clear()
    async with running_worker(), link_service.client() as http:
        response = await team.arun("Buy 5 shares of ACME")
        [req] = response.active_requirements
        await settled(db, req.member_run_id, 1)
        notification = await first(seen)
        assert f"{notification.run_id}/{notification.requirement_id}" == req.id
        r = await http.post(path(notification.links_for("alice")["approved"]))
        assert r.status_code == 200 and "as alice" in r.text, r.text
        for _ in range(200):
            done = await team.aget_run(response.run_id)
            if done.status == RunStatus.completed:
                break
            await asyncio.sleep(0.05)
    assert done.status == RunStatus.completed and TRADED == [("ACME", 5)]
    assert db.get_approval(req.id)["resolved_by"] == "alice"
