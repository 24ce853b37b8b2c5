"""Idempotency-Key leases: a claim whose request died is taken over after the lease, a live one is kept."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

from hitl import tool
from hitl.approval import approval
from hitl.service import idempotency
from tests.service.test_service import RAN, paused, pay, pays
from tests.store.test_audit import sql

APPROVE = json.dumps({"status": "approved"}).encode()
JSON = {"Content-Type": "application/json"}


def dead_claim(db, principal: str, key: str, path: str, body: bytes, *, age: float) -> None:
    """A claimed key with no answer, as a service that died mid-request leaves it, claimed ``age`` seconds ago."""
    sql(db, "INSERT INTO {t}_idempotency (principal, key, request_hash, claim, claimed_at) "
            "VALUES (%s, %s, %s, 'dead-service', now() - make_interval(secs => %s))",
        principal, key, idempotency.request_digest("POST", path, body), age)


async def test_a_claim_left_by_a_dead_service_is_taken_over_after_the_lease(make_agent, script, running_worker, db, service):
    """Past the lease, the retry runs: alice's decision is made, the tool runs once, and a second retry is replayed."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), service.client(service.token("alice")) as alice:
        _, approval_id = await paused(agent, db)
        RAN.clear()
        path = f"/approvals/{approval_id}/resolve"
        dead_claim(db, "alice", "pay-10", path, APPROVE, age=idempotency.LEASE_SECONDS + 5)
        r = await alice.post(path, content=APPROVE, headers={**JSON, "Idempotency-Key": "pay-10"})
        assert r.status_code == 200 and r.json()["resolved_by"] == "alice", r.text
        assert "Idempotent-Replayed" not in r.headers and RAN == [{"amount": 10, "to": "bob"}]
        again = await alice.post(path, content=APPROVE, headers={**JSON, "Idempotency-Key": "pay-10"})
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true" and again.json() == r.json()
    assert RAN == [{"amount": 10, "to": "bob"}]
    assert sql(db, "SELECT claim <> 'dead-service', status_code FROM {t}_idempotency WHERE key = 'pay-10'") == [(True, 200)]


async def test_a_claim_within_its_lease_answers_409_with_retry_after(make_agent, script, running_worker, db, service):
    """A claim renewed 5 s ago may still be running: 409, Retry-After within the lease, nothing decided."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), service.client(service.token("alice")) as alice:
        run, approval_id = await paused(agent, db)
        RAN.clear()
        path = f"/approvals/{approval_id}/resolve"
        dead_claim(db, "alice", "pay-10", path, APPROVE, age=5)
        r = await alice.post(path, content=APPROVE, headers={**JSON, "Idempotency-Key": "pay-10"})
        assert r.status_code == 409 and "still in progress" in r.json()["detail"], r.text
        assert 1 <= int(r.headers["Retry-After"]) <= idempotency.LEASE_SECONDS - 4
        assert db.get_approval(approval_id)["status"] == "pending" and RAN == []


async def test_a_dead_claim_is_not_taken_over_by_another_request(make_agent, script, running_worker, db, service):
    """The lease frees the key for the same request only: another body is still 422, another principal's key is its own."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), service.client(service.token("alice")) as alice:
        _, approval_id = await paused(agent, db)
        RAN.clear()
        path = f"/approvals/{approval_id}/resolve"
        dead_claim(db, "alice", "pay-10", path, APPROVE, age=idempotency.LEASE_SECONDS + 5)
        reject = json.dumps({"status": "rejected"}).encode()
        r = await alice.post(path, content=reject, headers={**JSON, "Idempotency-Key": "pay-10"})
        assert r.status_code == 422 and "different request" in r.json()["detail"], r.text
        assert db.get_approval(approval_id)["status"] == "pending" and RAN == []


SLOW: list[float] = []


@approval(approvers=["alice"], timeout=timedelta(hours=1))
@tool(requires_confirmation=True)
def slow_pay(amount: int) -> str:
    """Pay, slowly.

    Args:
        amount: How much.
    """
    SLOW.append(time.monotonic())
    time.sleep(6)
    return f"paid {amount}"


async def test_a_request_that_runs_past_the_lease_keeps_its_claim(make_agent, script, running_worker, db, service, monkeypatch):
    """With a 2 s lease, a decision whose tool takes 6 s renews its claim: a retry meanwhile gets 409, later the answer.
    (The margins are wide: renewals every 0.7 s on a loaded machine must not miss a 2 s lease.)"""
    monkeypatch.setattr(idempotency, "LEASE_SECONDS", 2.0)  # the service runs in this process, in a thread
    agent = make_agent(pays(script, 10, tool_name="slow_pay"), [slow_pay], db=db)
    async with running_worker(), service.client(service.token("alice")) as alice:
        _, approval_id = await paused(agent, db)
        SLOW.clear()
        path = f"/approvals/{approval_id}/resolve?wait=20"
        headers = {**JSON, "Idempotency-Key": "slow-10"}
        first = asyncio.create_task(alice.post(path, content=APPROVE, headers=headers))
        for _ in range(100):
            if SLOW:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(4.5)  # more than twice the lease since the claim was made; the tool still runs
        meanwhile = await alice.post(path, content=APPROVE, headers=headers)
        assert meanwhile.status_code == 409 and "still in progress" in meanwhile.json()["detail"], meanwhile.text
        answer = await first
        assert answer.status_code == 200 and answer.json()["run"]["status"] == "completed", answer.text
        later = await alice.post(path, content=APPROVE, headers=headers)
        assert later.status_code == 200 and later.headers["Idempotent-Replayed"] == "true" and later.json() == answer.json()
    assert len(SLOW) == 1


async def test_a_start_taken_over_after_its_service_died_finds_the_run_it_started(
        make_agent, script, running_worker, db, service):
    """POST /runs with a key and no run_id: the run's id comes from the key, so a retry that takes over the dead
    request's claim answers with the run that request started, and no second run (a second approval) exists."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    start = json.dumps({"agent": agent.name, "message": "pay"}).encode()
    async with running_worker(), service.client(service.token("alice", "runs:start", "runs:read")) as alice:
        first = await alice.post("/runs", content=start, headers={**JSON, "Idempotency-Key": "start-1"})
        assert first.status_code == 201, first.text
        run_id = first.json()["run_id"]
        # The service died after starting the run, before it stored the answer: only its claim is left, unrenewed.
        sql(db, "UPDATE {t}_idempotency SET status_code = NULL, body = NULL, claim = 'dead-service', "
                "claimed_at = now() - make_interval(secs => %s) WHERE principal = 'alice' AND key = 'start-1'",
            idempotency.LEASE_SECONDS + 5)
        retry = await alice.post("/runs", content=start, headers={**JSON, "Idempotency-Key": "start-1"})
        assert retry.status_code == 201 and retry.json()["run_id"] == run_id, retry.text
        assert [r.run_id for r in await agent.alist_runs()] == [run_id]
        other = await alice.post("/runs", content=start, headers={**JSON, "Idempotency-Key": "start-2"})
        assert other.status_code == 201 and other.json()["run_id"] != run_id
        # A run id given again (no key to replay by) is a conflict, not a second run and not a 500.
        again = await alice.post("/runs", json={"agent": agent.name, "message": "pay", "run_id": run_id})
        assert again.status_code == 409 and again.json()["error"] == "RunExistsError", again.text
