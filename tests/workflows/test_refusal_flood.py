"""Refused decisions: one visibility rule on every route, a few kept per decider, then 429, and a history that stays bounded."""

from __future__ import annotations

import asyncio

import pytest

from hitl import tool
from hitl.approval import approval
from hitl.workflows import refusals
from tests.store.test_audit import settled, sql

RAN: list[dict] = []


@approval(approvers=["alice", "carol"], separation_of_duties=True)
@tool(requires_confirmation=True)
def pay(amount: int, to: str) -> str:
    """Pay someone."""
    RAN.append({"amount": amount, "to": to})
    return f"paid {amount} to {to}"


def pays(script):
    return script({"turns": [{"tool_calls": [{"name": "pay", "arguments": {"amount": 500, "to": "mallory"}}]},
                             {"content": "done: {results}"}]})


async def history_length(client, run_id: str) -> int:
    """The run's history once it is quiet: no activity (the audit mirror, a notification) or workflow task pending,
    and the same length twice (what is still being written must not count as growth)."""
    handle, before = client.get_workflow_handle(run_id), -1
    for _ in range(200):
        description = await handle.describe()
        raw = description.raw_description
        length = len([e async for e in handle.fetch_history_events()])
        if not raw.pending_activities and not raw.HasField("pending_workflow_task") and length == before:
            return length
        before = length
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} never went quiet")


def refused_events(db, approval_id: str) -> list[str | None]:
    return [r[0] for r in sql(db, "SELECT payload->>'resolved_by' FROM {t}_events WHERE approval_id = %s AND kind = 'refused'"
                                  " ORDER BY seq", approval_id)]


async def test_a_decider_who_may_not_see_an_approval_gets_404_on_every_route_and_leaves_no_trace(
        make_agent, script, running_worker, db, service, client):
    """bob (approvals:decide, not an approver) is told "unknown" by /approvals and by /runs/{id}/continue alike;
    with no decisions the 422 names nothing of the run; the run's history and the trail do not move."""
    agent = make_agent(pays(script), [pay], db=db)
    bob = service.client(service.token("bob", "approvals:decide"))
    async with running_worker(), bob:
        run = await agent.arun("pay", user_id="carol")
        [(approval_id, _)] = await settled(db, run.run_id, 1)
        rid = run.requirements[0].id
        before = await history_length(client, run.run_id)
        for _ in range(5):
            assert (await bob.get(f"/approvals/{approval_id}")).status_code == 404
            assert (await bob.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})).status_code == 404
            r = await bob.post(f"/runs/{run.run_id}/continue", json={"decisions": [{"action": "confirm", "requirement_id": rid}]})
            assert r.status_code == 404 and "pay" not in r.text and "alice" not in r.text, r.text
            r = await bob.post(f"/runs/{run.run_id}/continue", json={"decisions": []})
            assert r.status_code == 404 and rid not in r.text and "pay" not in r.text, r.text
        assert await history_length(client, run.run_id) == before
        assert refused_events(db, approval_id) == []
        assert (await agent.aget_run(run.run_id)).is_paused and RAN == []


async def test_refusals_of_a_visible_approval_are_kept_a_few_times_then_refused_before_history(
        make_agent, script, running_worker, db, service, client):
    """carol may see the approval but requested the run (separation of duties): her first refusals are kept on the
    trail, later ones answer 403 without growing the run's history or the trail."""
    agent = make_agent(pays(script), [pay], db=db)
    carol = service.client(service.token("carol", "approvals:decide"))
    async with running_worker(), carol:
        run = await agent.arun("pay", user_id="carol")
        [(approval_id, _)] = await settled(db, run.run_id, 1)
        rid = run.requirements[0].id
        for _ in range(refusals.KEPT):
            r = await carol.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
            assert r.status_code == 403 and "separation of duties" in r.text, r.text
        await settled(db, run.run_id, 1)
        for _ in range(200):
            if len(refused_events(db, approval_id)) == refusals.KEPT:
                break
            await asyncio.sleep(0.05)
        kept = await history_length(client, run.run_id)
        for n in range(12):
            r = await (carol.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"}) if n % 2 else
                       carol.post(f"/runs/{run.run_id}/continue", json={"decisions": [{"action": "confirm", "requirement_id": rid}]}))
            assert r.status_code == 403 and "without being recorded" in r.text, r.text
        assert await history_length(client, run.run_id) == kept
        assert refused_events(db, approval_id) == ["carol"] * refusals.KEPT
        assert (await agent.aget_run(run.run_id)).is_paused and RAN == []


async def test_a_flood_of_refused_signals_keeps_a_few_on_the_trail(make_agent, script, running_worker, db, client):
    """Raw signals have no validator: past the few kept per decider, a refused one is not recorded."""
    agent = make_agent(pays(script), [pay], db=db)
    async with running_worker():
        run = await agent.arun("pay", user_id="carol")
        [(approval_id, _)] = await settled(db, run.run_id, 1)
        handle = client.get_workflow_handle(run.run_id)
        for _ in range(10):
            await handle.signal("confirm", {"action": "confirm", "requirement_id": run.requirements[0].id,
                                            "resolved_by": "mallory"})
        await handle.query("get_run")  # every signal before it has been applied
        for _ in range(200):
            if len(refused_events(db, approval_id)) >= refusals.KEPT:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert refused_events(db, approval_id) == ["mallory"] * refusals.KEPT
        assert (await agent.aget_run(run.run_id)).is_paused and RAN == []


async def test_a_caller_refused_too_often_gets_429_with_retry_after(make_agent, script, running_worker, db, service):
    """Past the service's limit of refusals per principal, every route that decides answers 429 before doing anything."""
    agent = make_agent(pays(script), [pay], db=db)
    bob = service.client(service.token("bob", "approvals:decide"))
    async with running_worker(), bob:
        run = await agent.arun("pay", user_id="carol")
        [(approval_id, _)] = await settled(db, run.run_id, 1)
        limit = service.app.state.hitl.throttle.limit
        codes = [(await bob.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})).status_code
                 for _ in range(limit)]
        assert codes == [404] * limit
        for path, body in ((f"/approvals/{approval_id}/resolve", {"status": "approved"}),
                           (f"/runs/{run.run_id}/continue", {"decisions": []}),
                           (f"/approvals/{approval_id}/change", {"extend_by_seconds": 60})):
            r = await bob.post(path, json=body, headers={"Idempotency-Key": f"k-{path}"})
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "bob" in r.text, (path, r.text)
        # Reading is not deciding: still answered.
        assert (await bob.get("/approvals")).status_code == 200


@pytest.fixture(autouse=True)
def _clear():
    RAN.clear()
