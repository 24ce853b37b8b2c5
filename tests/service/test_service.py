"""The decision service over HTTP: every route and error, identity from credentials, against the real stack."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from hitl import tool
from hitl.approval import approval
from tests.conftest import RunningService
from tests.store.test_audit import settled, sql

RAN: list[dict] = []


@approval(approvers=["alice", "bob"], timeout=timedelta(hours=1))
@tool(requires_confirmation=True)
def pay(amount: int, to: str) -> str:
    """Pay someone.

    Args:
        amount: How much.
        to: Who.
    """
    RAN.append({"amount": amount, "to": to})
    return f"paid {amount} to {to}"


@approval(approvers=["alice", "bob", "carol"], quorum=2)
@tool(requires_confirmation=True)
def wire(amount: int) -> str:
    """Wire money (two approvers)."""
    RAN.append({"wire": amount})
    return f"wired {amount}"


@tool(requires_user_input=True, user_input_fields=["time"])
def book(date: str, time: str) -> str:
    """Book a slot."""
    return f"booked {date} {time}"


def pays(script, *amounts: int, tool_name: str = "pay"):
    """A model that calls the tool once per amount, one turn each, then answers with the results."""
    turns = [{"tool_calls": [{"name": tool_name, "arguments": {"amount": a, "to": "bob"} if tool_name == "pay"
                              else {"amount": a}}]} for a in amounts]
    return script({"turns": [*turns, {"content": "done: {results}"}]})


async def paused(agent, db, message="pay"):
    """A run paused on its first approval, mirrored: (run, approval id)."""
    run = await agent.arun(message)
    assert run.is_paused, run
    [(approval_id, _)] = await settled(db, run.run_id, 1)
    return run, approval_id


async def test_a_decision_over_http_resumes_the_run_and_returns_its_next_pause(make_agent, script, running_worker, db, service):
    """Approving over HTTP runs the tool once and answers with the run's next pause; the decider is the token's principal."""
    agent = make_agent(pays(script, 10, 20), [pay], db=db)
    alice = service.client(service.token("alice"))
    async with running_worker(), alice:
        run, approval_id = await paused(agent, db)
        RAN.clear()
        r = await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["resolved_by"] == "alice" and body["decision"] == "confirm" and not body["waiting"]
        assert body["run"]["status"] == "paused" and body["run"]["pauses"] == 2
        assert body["run"]["requirements"][0]["tool_execution"]["arguments"] == {"amount": 20, "to": "bob"}
        assert RAN == [{"amount": 10, "to": "bob"}]
        await settled(db, run.run_id, 2)
    assert db.get_approval(approval_id)["resolved_by"] == "alice"


async def test_edited_arguments_are_checked_and_a_rejection_carries_its_reason(make_agent, script, running_worker, db, service):
    """Arguments that fail the tool's schema get 422 and change nothing; corrected ones run; a reason reaches the model."""
    agent = make_agent(pays(script, 10, 20), [pay], db=db)
    async with running_worker(), service.client(service.token("bob")) as bob:
        run, approval_id = await paused(agent, db)
        r = await bob.post(f"/approvals/{approval_id}/resolve", json={"status": "approved", "arguments": {"amount": "lots"}})
        assert r.status_code == 422 and "amount" in r.json()["detail"], r.text
        RAN.clear()
        r = await bob.post(f"/approvals/{approval_id}/resolve",
                           json={"status": "approved", "arguments": {"amount": 5, "to": "carol"}})
        assert r.status_code == 200 and RAN == [{"amount": 5, "to": "carol"}], r.text
        second = f"{run.run_id}/{r.json()['run']['requirements'][0]['id']}"
        await settled(db, run.run_id, 2)
        r = await bob.post(f"/approvals/{second}/resolve", json={"status": "rejected", "reason": "over budget"})
        assert r.status_code == 200 and r.json()["run"]["status"] == "completed", r.text
        assert "over budget" in r.json()["run"]["content"]
    record = db.get_approval(approval_id)
    assert record["context"]["original_arguments"] == {"amount": 10, "to": "bob"}
    assert record["context"]["arguments"] == {"amount": 5, "to": "carol"}


async def test_a_non_approver_is_refused_with_403_and_the_attempt_is_recorded(make_agent, script, running_worker, db, service):
    """mallory holds approvals:decide but is not an approver: 403, nothing runs, a `refused` event names her."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), service.client(service.token("mallory", "approvals:read", "approvals:decide")) as mallory:
        run, approval_id = await paused(agent, db)
        RAN.clear()
        r = await mallory.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
        assert r.status_code == 403 and r.json()["error"] == "DecisionNotAllowedError", r.text
        assert "mallory is not among the approvers" in r.json()["detail"]
        for _ in range(100):
            events = db.get_approval_events(approval_id)
            if any(e["kind"] == "refused" for e in events):
                break
            await asyncio.sleep(0.05)
        refused = [e for e in events if e["kind"] == "refused"]
        assert refused and refused[0]["payload"]["resolved_by"] == "mallory"
        assert RAN == [] and (await agent.aget_run(run.run_id)).is_paused


async def test_a_body_naming_someone_else_is_refused(make_agent, script, running_worker, db, service):
    """resolved_by in the body must be the caller: bob cannot decide as alice, over either route."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), service.client(service.token("bob")) as bob:
        run, approval_id = await paused(agent, db)
        r = await bob.post(f"/approvals/{approval_id}/resolve", json={"status": "approved", "resolved_by": "alice"})
        assert r.status_code == 403 and "not the caller" in r.json()["detail"], r.text
        rid = approval_id.split("/", 1)[1]
        r = await bob.post(f"/runs/{run.run_id}/continue",
                           json={"decisions": [{"action": "confirm", "requirement_id": rid, "resolved_by": "alice"}]})
        assert r.status_code == 403, r.text
        assert (await agent.aget_run(run.run_id)).active_requirements
        r = await bob.post(f"/approvals/{approval_id}/resolve", json={"status": "approved", "resolved_by": "bob"})
        assert r.status_code == 200 and r.json()["resolved_by"] == "bob", r.text


async def test_quorum_takes_two_tokens(make_agent, script, running_worker, db, service):
    """quorum=2: alice's approval leaves it pending (her again: 422), bob's runs the tool once."""
    agent = make_agent(pays(script, 7, tool_name="wire"), [wire], db=db)
    alice, bob = service.client(service.token("alice")), service.client(service.token("bob"))
    async with running_worker(), alice, bob:
        run, approval_id = await paused(agent, db)
        RAN.clear()
        r = await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
        assert r.status_code == 200 and r.json()["run"]["requirements"][0]["approvals"] == ["alice"], r.text
        assert r.json()["run"]["status"] == "paused" and RAN == []
        r = await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
        assert r.status_code == 422 and "already approved" in r.json()["detail"], r.text
        r = await bob.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
        assert r.status_code == 200 and r.json()["run"]["status"] == "completed", r.text
        assert RAN == [{"wire": 7}]


async def test_two_services_resolving_at_once_decide_once(make_agent, script, running_worker, db, service):
    """Two service processes, alice and bob at the same moment: one 200, one 409 naming the winner, the tool once."""
    other = RunningService(db)
    agent = make_agent(pays(script, 10), [pay], db=db)
    try:
        alice, bob = service.client(service.token("alice")), other.client(service.token("bob"))
        async with running_worker(), alice, bob:
            run, approval_id = await paused(agent, db)
            RAN.clear()
            answers = await asyncio.gather(
                alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"}),
                bob.post(f"/approvals/{approval_id}/resolve", json={"status": "rejected", "reason": "no"}))
            codes = sorted(a.status_code for a in answers)
            assert codes == [200, 409], [a.text for a in answers]
            winner = next(a for a in answers if a.status_code == 200).json()["resolved_by"]
            conflict = next(a for a in answers if a.status_code == 409).json()
            assert conflict["resolved_by"] == winner and conflict["resolved_at"] and winner in conflict["detail"]
            assert len(RAN) == (1 if winner == "alice" else 0)
            await settled(db, run.run_id, 1, "approved" if winner == "alice" else "rejected")
            r = await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
            assert r.status_code == 409 and r.json()["resolved_by"] == winner
    finally:
        other.stop()


async def test_an_idempotency_key_makes_a_retry_return_the_first_answer(make_agent, script, running_worker, db, service):
    """The same key and body: the first answer again, replayed; the same key on another body: 422."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), service.client(service.token("alice")) as alice:
        run, approval_id = await paused(agent, db)
        RAN.clear()
        headers = {"Idempotency-Key": "pay-10-once"}
        first = await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"}, headers=headers)
        again = await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"}, headers=headers)
        assert first.status_code == again.status_code == 200 and first.json() == again.json()
        assert again.headers.get("Idempotent-Replayed") == "true" and RAN == [{"amount": 10, "to": "bob"}]
        other = await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "rejected"}, headers=headers)
        assert other.status_code == 422 and "different request" in other.json()["detail"]
        fresh = await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"},
                                 headers={"Idempotency-Key": "another"})
        assert fresh.status_code == 409
        run, approval_id = await paused(agent, db)
        RAN.clear()
        same = {"Idempotency-Key": "at-once"}
        answers = await asyncio.gather(*(alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"},
                                                    headers=same) for _ in range(3)))
        # One ran it; the others got its answer replayed, or were told it was still in flight.
        assert sorted(a.status_code for a in answers)[0] == 200 and {a.status_code for a in answers} <= {200, 409}
        assert RAN == [{"amount": 10, "to": "bob"}]


async def test_credentials_401_scopes_403_unknown_404_size_413_schema_422(make_agent, script, running_worker, db, service):
    """Each error code: no, malformed, unknown, revoked and expired tokens; a missing scope; unknown ids; limits; shapes."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    revoked = service.token("alice")
    service.tokens.revoke(revoked)
    expired = service.token("alice", expires_in=timedelta(seconds=1))
    reader = service.token("auditor", "approvals:read")
    good = service.token("alice")
    async with running_worker():
        run, approval_id = await paused(agent, db)
        await asyncio.sleep(1.1)
        url = f"/approvals/{approval_id}/resolve"
        for token, why in ((None, "no credentials"), ("nonsense", "neither"), (good[:-4] + "AAAA", "not valid"),
                           (revoked, "revoked"), (expired, "expired")):
            async with service.client(token) as c:
                r = await c.post(url, json={"status": "approved"})
            assert r.status_code == 401 and why in r.json()["detail"], (why, r.text)
            assert r.headers["WWW-Authenticate"] == "Bearer"
            assert good not in r.text and (token is None or token not in r.text)
        async with service.client(reader) as c:
            r = await c.post(url, json={"status": "approved"})
            assert r.status_code == 403 and "approvals:decide" in r.json()["detail"]
            assert (await c.get(f"/approvals/{approval_id}")).status_code == 200
            assert (await c.get("/runs")).status_code == 403
        async with service.client(good) as c:
            assert (await c.get("/approvals/run-nope/req-1")).status_code == 404
            assert (await c.post("/approvals/run-nope/req-1/resolve", json={"status": "approved"})).status_code == 404
            r = await c.post(url, json={"status": "approved", "reason": "x" * 5000})
            problem = r.json()  # RFC 9457 problem details, every field it failed on in `errors`
            assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.headers
            assert problem["errors"][0]["loc"][-1] == "reason" and problem["detail"].startswith("reason:"), problem
            assert problem["type"] == "urn:hitl:error:InvalidInputError" and problem["status"] == 422
            r = await c.post(url, json={"status": "maybe"})
            assert r.status_code == 422
            r = await c.post(url, json={"status": "approved", "user_input": {"time": "10:00"}})
            assert r.status_code == 422 and "user_input does not apply" in r.json()["detail"]
            r = await c.post(url, json={"status": "rejected", "reason": "a\x00b"})
            assert r.status_code == 422 and "NUL" in r.json()["detail"]
            r = await c.post(url, json={"status": "approved", "arguments": {"amount": 1, "to": "x" * 300_000}})
            assert r.status_code == 413 and "MAX_DECISION_BYTES" in r.json()["detail"]
            r = await c.post(url, content=b"{" + b" " * 2_000_000 + b"}", headers={"Content-Type": "application/json"})
            assert r.status_code == 413 and "limit" in r.json()["detail"]
            assert (await agent.aget_run(run.run_id)).is_paused


async def test_listing_reading_and_counting_approvals(make_agent, script, running_worker, db, service):
    """GET /approvals pages by page and by cursor, filters, sorts by deadline and age; a decider sees only its own."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    other = make_agent(script({"turns": [{"tool_calls": [{"name": "book", "arguments": {"date": "2026-12-03"}}]},
                                         {"content": "{results}"}]}), [book], db=db)
    async with running_worker(), service.client(service.token("auditor", "approvals:read")) as auditor:
        runs = [await paused(agent, db) for _ in range(3)]
        booked, book_id = await paused(other, db, "book")
        r = await auditor.get("/approvals", params={"limit": 2})
        page = r.json()
        assert r.status_code == 200 and page["meta"]["total_count"] == 4 and page["meta"]["total_pages"] == 2
        assert len(page["data"]) == 2 and page["meta"]["next_cursor"]
        r2 = await auditor.get("/approvals", params={"limit": 2, "cursor": page["meta"]["next_cursor"]})
        ids = [a["id"] for a in page["data"] + r2.json()["data"]]
        assert sorted(ids) == sorted([a for _, a in runs] + [book_id]) and r2.json()["meta"]["next_cursor"] is None
        assert [a["id"] for a in (await auditor.get("/approvals", params={"page": 2, "limit": 2})).json()["data"]] == ids[2:]
        by_age = (await auditor.get("/approvals", params={"sort_by": "age"})).json()["data"]
        assert [a["id"] for a in by_age] == ids[::-1]  # newest first by default; oldest first by age
        assert (await auditor.get("/approvals", params={"sort_by": "deadline"})).status_code == 200
        assert (await auditor.get("/approvals/count")).json() == {"count": 4}
        assert (await auditor.get("/approvals/count", params={"tool_name": "pay"})).json() == {"count": 3}
        assert (await auditor.get("/approvals", params={"status": "nonsense"})).status_code == 422
        assert (await auditor.get("/approvals", params={"cursor": "garbage"})).status_code == 422
        assert (await auditor.get("/approvals", params={"limit": 0})).status_code == 422
        detail = (await auditor.get(f"/approvals/{book_id}")).json()
        assert detail["run_status"] == "paused" and detail["requirement_kind"] == "user_input"
        assert detail["answer_schema"]["properties"]["user_input"]["required"] == ["time"]
        assert [e["kind"] for e in detail["events"]] == ["requested"]
        status = (await auditor.get(f"/approvals/{runs[0][1]}/status")).json()
        assert status == {"id": runs[0][1], "status": "pending", "resolved_by": None, "resolved_at": None}
        pay_detail = (await auditor.get(f"/approvals/{runs[0][1]}")).json()
        assert pay_detail["policy"]["approvers"] == ["alice", "bob"]
        assert pay_detail["answer_schema"]["properties"]["arguments"]["properties"]["amount"]["type"] == "integer"
    async with service.client(service.token("bob", "approvals:decide")) as bob:
        mine = (await bob.get("/approvals", params={"approver": "me"})).json()
        everything = (await bob.get("/approvals")).json()
        # bob is an approver of the payments; the booking has no approvers, so anyone may decide it
        assert mine["meta"]["total_count"] == everything["meta"]["total_count"] == 4
    async with service.client(service.token("mallory", "approvals:decide")) as mallory:
        seen = (await mallory.get("/approvals")).json()
        assert [a["id"] for a in seen["data"]] == [book_id]
        assert (await mallory.get(f"/approvals/{runs[0][1]}")).status_code == 404
        assert (await mallory.post(f"/approvals/{runs[0][1]}/resolve", json={"status": "approved"})).status_code == 404


async def test_user_input_over_http(make_agent, script, running_worker, db, service):
    """A user-input approval takes user_input (422 without it) and the run completes with it."""
    agent = make_agent(script({"turns": [{"tool_calls": [{"name": "book", "arguments": {"date": "2026-12-03"}}]},
                                         {"content": "{results}"}]}), [book], db=db)
    async with running_worker(), service.client(service.token("dana")) as dana:
        run, approval_id = await paused(agent, db, "book")
        r = await dana.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
        assert r.status_code == 422 and "user_input" in r.json()["detail"]
        r = await dana.post(f"/approvals/{approval_id}/resolve", json={"status": "approved", "user_input": {"time": "10:00"}})
        assert r.status_code == 200 and r.json()["run"]["content"] == "booked 2026-12-03 10:00", r.text


async def test_runs_start_read_continue_list_and_cancel(make_agent, script, running_worker, db, service):
    """POST /runs starts a run for the caller (user_id is the principal); continue decides; cancel closes."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    token = service.token("alice", "runs:start", "runs:read", "runs:cancel", "approvals:decide")
    async with running_worker(), service.client(token) as alice:
        r = await alice.post("/runs", json={"agent": agent.name, "message": "pay", "user_id": "someone-else"})
        assert r.status_code == 403
        assert (await alice.post("/runs", json={"agent": "no-such-agent", "message": "pay"})).status_code == 404
        r = await alice.post("/runs", json={"agent": agent.name, "message": "pay"}, headers={"Idempotency-Key": "start-1"})
        assert r.status_code == 201 and r.json()["status"] == "paused", r.text
        run = r.json()
        again = await alice.post("/runs", json={"agent": agent.name, "message": "pay"}, headers={"Idempotency-Key": "start-1"})
        assert again.status_code == 201 and again.json()["run_id"] == run["run_id"]
        [(approval_id, _)] = await settled(db, run["run_id"], 1)
        assert db.get_approval(approval_id)["user_id"] == "alice"
        assert (await alice.get(f"/runs/{run['run_id']}")).json()["status"] == "paused"
        assert (await alice.get("/runs/run-unknown")).status_code == 404
        listed = (await alice.get("/runs", params={"status": "paused", "agent": agent.name})).json()
        for _ in range(100):
            if [x["run_id"] for x in listed["data"]] == [run["run_id"]]:
                break
            await asyncio.sleep(0.1)
            listed = (await alice.get("/runs", params={"status": "paused", "agent": agent.name})).json()
        assert [x["run_id"] for x in listed["data"]] == [run["run_id"]] and listed["data"][0]["pending_tools"] == ["pay"]
        soon, now = datetime.now(UTC) + timedelta(hours=2), datetime.now(UTC)
        due = (await alice.get("/runs", params={"deadline_before": soon.isoformat(), "agent": agent.name})).json()
        assert [x["run_id"] for x in due["data"]] == [run["run_id"]]  # its approval expires within the hour
        assert (await alice.get("/runs", params={"deadline_before": now.isoformat(), "agent": agent.name})).json()["data"] == []
        assert (await alice.get("/runs", params={"status": "bogus"})).status_code == 422
        rid = run["requirements"][0]["id"]
        r = await alice.post(f"/runs/{run['run_id']}/continue", json={"decisions": [{"action": "confirm", "requirement_id": rid}]})
        assert r.status_code == 200 and r.json()["status"] == "completed", r.text
        assert (await alice.post(f"/runs/{run['run_id']}/cancel")).status_code == 409
        second = (await alice.post("/runs", json={"agent": agent.name, "message": "pay"})).json()
        r = await alice.post(f"/runs/{second['run_id']}/cancel", json={"reason": "changed my mind"})
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text


async def test_change_approval_needs_admin_or_an_approver_and_records_who(make_agent, script, running_worker, db, service):
    """Reassigning: a stranger gets 403, an approver may, and the change is recorded as made by them."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker():
        run, approval_id = await paused(agent, db)
        async with service.client(service.token("mallory", "approvals:read", "approvals:decide")) as mallory:
            r = await mallory.post(f"/approvals/{approval_id}/change", json={"approvers": ["mallory"]})
            assert r.status_code == 403 and "current approver" in r.json()["detail"]
        async with service.client(service.token("alice")) as alice:
            r = await alice.post(f"/approvals/{approval_id}/change", json={"approvers": ["dana"], "extend_by_seconds": 60})
            assert r.status_code == 200 and r.json()["requirements"][0]["policy"]["approvers"] == ["dana"], r.text
        for _ in range(100):
            changed = [e for e in db.get_approval_events(approval_id) if e["kind"] == "changed"]
            if changed:
                break
            await asyncio.sleep(0.05)
        assert changed[0]["payload"]["changed_by"] == "alice" and changed[0]["payload"]["approvers"] == ["dana"]


class Events:
    """The events of an SSE response as they come: id, event and parsed data."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self, count: int = 1) -> list[dict]:
        found, current = [], {}
        async for line in self._lines:
            if not line:
                if "data" in current:
                    found.append(current)
                    if len(found) == count:
                        return found
                current = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                current[field] = json.loads(value) if field == "data" else value
        return found


async def test_the_event_stream_sends_a_request_and_its_decision_and_resumes(make_agent, script, running_worker, db, service):
    """A subscriber sees `requested` then `decided`; reconnecting with Last-Event-ID resumes after the first."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    token = service.token("alice")
    async with running_worker(), service.client(token) as alice:
        async with alice.stream("GET", "/approvals/events") as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            stream = Events(response)
            run, approval_id = await paused(agent, db)
            [requested] = await asyncio.wait_for(stream.next(), 30)
            assert requested["event"] == "requested" and requested["data"]["approval_id"] == approval_id
            assert requested["data"]["tool_name"] == "pay" and requested["data"]["approvers"] == ["alice", "bob"]
            r = await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
            assert r.status_code == 200
            [decided] = await asyncio.wait_for(stream.next(), 30)
            assert decided["event"] == "decided" and decided["data"]["kind"] == "confirmed"
            assert decided["data"]["payload"]["resolved_by"] == "alice"
        async with alice.stream("GET", "/approvals/events", headers={"Last-Event-ID": requested["id"]}) as resumed:
            [again] = await asyncio.wait_for(Events(resumed).next(), 30)
            assert again["id"] == decided["id"]
        r = await alice.get("/approvals/events", headers={"Last-Event-ID": "not-an-id"})
        assert r.status_code == 422
    async with service.client(service.token("mallory", "approvals:decide")) as mallory:
        async with mallory.stream("GET", "/approvals/events", params={"after": "0.0"}) as hidden:
            with pytest.raises(TimeoutError):  # every event so far is of approvals she may not decide
                await asyncio.wait_for(Events(hidden).next(), 1.5)


def test_openapi_is_published(service):
    """/openapi.json names every route and the bearer scheme; every error it declares is problem details, and
    an approval's path is two id segments whose pattern the document states."""
    document = httpx.get(f"{service.url}/openapi.json").json()
    assert {"/approvals", "/approvals/count", "/approvals/events", "/approvals/{run_id}/{requirement_id}/resolve",
            "/runs", "/runs/{run_id}/continue"} <= set(document["paths"])
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    resolve = document["paths"]["/approvals/{run_id}/{requirement_id}/resolve"]["post"]
    assert {"400", "401", "403", "404", "408", "409", "413", "422", "429", "500", "503"} <= set(resolve["responses"])
    for code, answer in resolve["responses"].items():
        if code[0] in "45":
            assert answer["content"] == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    patterns = {p["name"]: p["schema"].get("pattern") for p in resolve["parameters"] if p["in"] == "path"}
    assert patterns == {"run_id": "^[A-Za-z0-9][A-Za-z0-9._:@-]*$", "requirement_id": "^[A-Za-z0-9][A-Za-z0-9._:@-]*$"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


@pytest.mark.parametrize("scopes", [["nonsense"], []])
def test_tokens_refuse_unknown_scopes(service, scopes):
    """A token needs one or more known scopes."""
    from hitl.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="scopes"):
        service.tokens.create("alice", scopes)


def test_a_token_is_stored_only_as_a_hash(service):
    """The table holds the id and sha256 of the secret, never the secret."""
    info, secret = service.tokens.create("svc", ["approvals:read"])
    assert secret.startswith(f"hitl_{info.id}_")
    rows = sql(service.db, "SELECT * FROM {t}_tokens WHERE id = %s", info.id)
    secret_part = secret.removeprefix(f"hitl_{info.id}_")
    assert rows and len(secret_part) >= 40 and secret_part not in repr(rows)


async def test_oidc_keys_from_a_jwks_url(db, temporal_server):
    """HITL_OIDC_JWKS may be a URL: the key set is fetched from it, and a token signed by another key is refused."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from hitl.security.oidc import OidcSettings

    idp, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    body = json.dumps({"keys": [{**json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(idp.public_key())), "kid": "k1"}]}).encode()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    keys = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    threading.Thread(target=keys.serve_forever, daemon=True).start()
    oidc = OidcSettings(jwks=f"http://127.0.0.1:{keys.server_address[1]}/jwks", issuer="https://idp", audience="hitl")
    service = RunningService(db, oidc=oidc)
    claims = {"iss": "https://idp", "aud": "hitl", "sub": "svc-ci", "scope": "approvals:read", "exp": datetime.now(UTC)
              + timedelta(minutes=5)}
    try:
        async with service.client(jwt.encode(claims, idp, algorithm="EdDSA", headers={"kid": "k1"})) as ci:
            r = await ci.get("/approvals")
            assert r.status_code == 200 and r.json()["meta"]["total_count"] == 0, r.text
        async with service.client(jwt.encode(claims, stranger, algorithm="EdDSA", headers={"kid": "k1"})) as forged:
            r = await forged.get("/approvals")
            assert r.status_code == 401 and "refused" in r.json()["detail"], r.text
    finally:
        service.stop()
        keys.shutdown()
        keys.server_close()
