"""A team decision on a member's pause goes straight to the member run (``workflows/direct.py``).

The team checks it (a query, nothing recorded), the member checks it again, records it, runs the
tool and answers at its next pause or end with its report, which the caller hands to the team;
the caller gets the team's next pause or end. Each test also reads the histories to prove which
path the decision took.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from hitl import RunStatus
from hitl._core import runs as _runs
from hitl._wire import MEMBER_REPORT, TEAM_CONTINUE, TEAM_DECIDE, DecisionRoute, MemberProgress, MemberReport, TeamDecisions
from hitl.decisions import Confirm
from hitl.errors import (
    DecisionNotAllowedError,
    InvalidDecisionError,
    InvalidInputError,
    RequirementAlreadyResolvedError,
    RunEndedError,
)
from tests.core import test_team
from tests.core.test_team import TRADES
from tests.security import test_strict
from tests.security.test_strict import settled

# Fixtures of those modules, used here by name.
make_team = test_team.make_team
service_key, strict, signed_service = test_strict.service_key, test_strict.strict, test_strict.signed_service


async def updates_of(client, run_id: str) -> list[str]:
    """The names of the updates a run accepted, in order."""
    names = []
    async for e in client.get_workflow_handle(run_id).fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            names.append(e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name)
    return names


async def signals_sent(client, run_id: str) -> int:
    return len([e async for e in client.get_workflow_handle(run_id).fetch_history_events()
                if e.event_type == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED])


async def events(db, approval_id: str, kind: str) -> list[dict]:
    """The approval's events, once one of ``kind`` is mirrored."""
    for _ in range(200):
        found = db.get_approval_events(approval_id)
        if any(e["kind"] == kind for e in found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{approval_id}: no {kind} event in {db.get_approval_events(approval_id)}")


async def test_a_team_decision_goes_to_the_member_and_runs_its_tool_once(make_team, running_worker, db, client):
    """Confirmed on the team: the member takes it by update, records it once, runs the tool once; the team ends."""
    team, _, _ = make_team(db=db)
    TRADES.clear()
    async with running_worker():
        response = await team.arun("Buy 100 shares of AAPL")
        [req] = response.active_requirements
        sent_before = await signals_sent(client, response.run_id)
        updates_before = await updates_of(client, response.run_id)
        req.confirm(resolved_by="alice")
        done = await team.acontinue_run(response.run_id, response.requirements)
        assert done.status == RunStatus.completed and "Trader: bought 100 AAPL" in done.content, done
        assert TRADES == [("AAPL", 100)]
        assert await updates_of(client, req.member_run_id) == [TEAM_CONTINUE]
        assert await updates_of(client, response.run_id) == [*updates_before, MEMBER_REPORT]  # the member's report, handed on
        assert await signals_sent(client, response.run_id) == sent_before  # nothing forwarded by the team
        [shown] = done.requirements
        assert shown.resolution == "confirmed" and shown.resolved_by == "alice"
        found = await events(db, req.id, "confirmed")
    assert [e["kind"] for e in found] == ["requested", "confirmed"]
    assert found[-1]["payload"]["via"] == "team" and found[-1]["payload"]["resolved_by"] == "alice"


async def test_a_rejection_through_the_member_never_runs_the_tool(make_team, running_worker, db, client):
    """Rejected on the team: the member records it and never runs the tool; the reason reaches the leader."""
    team, _, _ = make_team(db=db)
    TRADES.clear()
    async with running_worker():
        response = await team.arun("Buy 5 shares of IBM")
        [req] = response.active_requirements
        req.reject("too risky today", resolved_by="alice")
        done = await team.acontinue_run(response)
        assert done.status == RunStatus.completed and "too risky today" in done.content, done
        assert await updates_of(client, req.member_run_id) == [TEAM_CONTINUE]
        found = await events(db, req.id, "rejected")
    assert TRADES == [] and [e["kind"] for e in found] == ["requested", "rejected"]


async def test_a_decision_the_team_refuses_reaches_no_member(make_team, running_worker, db, client):
    """Arguments the tool's schema refuses: the team's error, nothing recorded anywhere, nothing run."""
    team, _, _ = make_team(db=db)
    TRADES.clear()
    async with running_worker():
        response = await team.arun("Buy 3 shares of SAP")
        [req] = response.active_requirements
        req.confirm(arguments={"symbol": "SAP", "quantity": "many"}, resolved_by="alice")
        with pytest.raises(InvalidDecisionError, match=f"run {response.run_id}, requirement"):
            await team.acontinue_run(response)
        assert await updates_of(client, req.member_run_id) == []
        again = await team.aget_run(response.run_id)
        assert again.status == RunStatus.paused and again.active_requirements[0].id == req.id
        assert [e["kind"] for e in db.get_approval_events(req.id)] == ["requested"] and TRADES == []
        # The control: a valid decision after the refused one is the member's first and only update and the
        # approval's only decision, and trades once; had the refused one reached the member, it would not be.
        [req] = again.active_requirements
        req.confirm(resolved_by="alice")
        done = await team.acontinue_run(again)
        assert done.status == RunStatus.completed, done
        assert await updates_of(client, req.member_run_id) == [TEAM_CONTINUE]
        found = await events(db, req.id, "confirmed")
    assert [e["kind"] for e in found] == ["requested", "confirmed"] and TRADES == [("SAP", 3)]


async def test_a_decision_on_the_member_and_one_through_the_team_at_once_are_decided_once(
        make_team, running_worker, db, client):
    """Through the team (to the member) and on the member itself at once: one wins, the other is told, one trade."""
    team, _, _ = make_team(db=db)
    async with running_worker():
        for _ in range(3):
            TRADES.clear()
            response = await team.arun("Buy 7 shares of SHOP")
            [req] = response.active_requirements
            req.confirm(resolved_by="alice")
            member_id = req.id[len(req.member_run_id) + 1:]
            results = await asyncio.gather(
                team.acontinue_run(response),
                _runs.decide(client, req.member_run_id, Confirm(requirement_id=member_id, resolved_by="bob")),
                return_exceptions=True)
            lost = [r for r in results if isinstance(r, BaseException)]
            assert len(lost) == 1 and isinstance(lost[0], RequirementAlreadyResolvedError), results
            result = await client.get_workflow_handle(response.run_id).result()
            found = await events(db, req.id, "confirmed")
            kinds = [e["kind"] for e in found]
            assert TRADES == [("SHOP", 7)], TRADES
            assert kinds[:2] == ["requested", "confirmed"] and kinds.count("confirmed") == 1, kinds
            winner = next(e for e in found if e["kind"] == "confirmed")["payload"]["resolved_by"]
            assert result["requirements"][0]["resolved_by"] == winner
            assert "already resolved: confirmed by " + winner in str(lost[0])


async def test_a_decision_sent_to_the_team_run_meanwhile_runs_nothing_twice(make_team, running_worker, db, client):
    """The direct path and the team's own decide update at once: the member owns the requirement, one trade."""
    team, _, _ = make_team(db=db)
    TRADES.clear()
    async with running_worker():
        response = await team.arun("Buy 9 shares of ADBE")
        [req] = response.active_requirements
        req.confirm(resolved_by="alice")
        await asyncio.gather(team.acontinue_run(response),
                             _runs.decide(client, response.run_id, Confirm(requirement_id=req.id, resolved_by="bob")),
                             return_exceptions=True)
        result = await client.get_workflow_handle(response.run_id).result()
        await events(db, req.id, "confirmed")
        await asyncio.sleep(0.5)  # a forwarded loser is refused and recorded by the member
    kinds = [e["kind"] for e in db.get_approval_events(req.id)]
    assert TRADES == [("ADBE", 9)] and kinds.count("confirmed") == 1, kinds
    assert result["status"] == "completed"


async def test_a_member_run_that_is_gone_or_has_ended_is_named(make_team, running_worker, client, monkeypatch):
    """The team routes to a member run that no longer takes decisions: the error names it and the requirement."""
    team, _, _ = make_team()
    TRADES.clear()
    async with running_worker():
        response = await team.arun("Buy 2 shares of NOW")
        [req] = response.active_requirements
        ended = await team.arun("Buy 1 shares of X")  # another team run, then ended
        await _runs.cancel(client, ended.run_id)
        real_query = WorkflowHandle.query
        target = {"id": f"{response.run_id}.gone.9-call"}

        async def routed_to(handle, name, *args, **kwargs):
            route = await real_query(handle, name, *args, **kwargs)
            if isinstance(route, DecisionRoute) and route.member_run_id is not None:
                route.member_run_id = target["id"]
            return route

        monkeypatch.setattr(WorkflowHandle, "query", routed_to)
        req.confirm(resolved_by="alice")
        with pytest.raises(RunEndedError, match=f"requirement '{req.id}' belongs to member run {target['id']}, which is gone"):
            await team.acontinue_run(response)
        target["id"] = ended.run_id
        with pytest.raises(RunEndedError, match=f"belongs to member run {ended.run_id}, which has ended"):
            await team.acontinue_run(response)
        monkeypatch.undo()
        assert TRADES == []
        done = await team.acontinue_run(response)  # the real member still takes it
    assert TRADES == [("NOW", 2)] and done.status == RunStatus.completed


async def test_strict_a_signed_team_decision_goes_to_the_member_an_unsigned_one_is_refused(
        make_team, running_worker, db, client, signed_service):
    """Strict mode: unsigned through the team, refused and recorded, nothing runs; signed by the service, the member takes it."""
    team, _, _ = make_team(db=db)
    TRADES.clear()
    async with running_worker(), signed_service.client(signed_service.token("alice")) as alice:
        response = await team.arun("Buy 4 shares of AMD")
        [req] = response.active_requirements
        await settled(db, req.member_run_id, 1)
        req.confirm(resolved_by="alice")
        with pytest.raises(DecisionNotAllowedError, match="unsigned"):
            await team.acontinue_run(response)
        await events(db, req.id, "refused")
        assert TRADES == []
        r = await alice.post(f"/approvals/{req.id}/resolve", json={"status": "approved"})
        assert r.status_code == 200 and r.json()["run"]["status"] == "completed", r.text
        assert TRADES == [("AMD", 4)]
        assert await updates_of(client, req.member_run_id) == [TEAM_CONTINUE]
        await settled(db, req.member_run_id, 1, "approved")
    assert db.verify_decisions(require_signed=True) == []


async def test_workers_without_the_report_handlers_still_take_the_direct_path(make_team, running_worker, client, monkeypatch):
    """A member worker without ``team_continue``: ``team_decide``; a team without ``member_report``: the member's signal."""
    from hitl._core import continuing

    team, _, _ = make_team()
    TRADES.clear()
    async with running_worker():
        response = await team.arun("Buy 6 shares of INTC")
        [req] = response.active_requirements
        before = await updates_of(client, response.run_id)
        monkeypatch.setattr(continuing, "TEAM_CONTINUE", "team_continue_from_a_later_hitl")
        req.confirm(resolved_by="alice")
        done = await team.acontinue_run(response)
        assert done.status == RunStatus.completed and "Trader: bought 6 INTC" in done.content, done
        assert await updates_of(client, req.member_run_id) == [TEAM_DECIDE]
        assert await updates_of(client, response.run_id) == [*before, "wait_for_progress"]

        monkeypatch.setattr(continuing, "TEAM_CONTINUE", TEAM_CONTINUE)
        monkeypatch.setattr(continuing, "MEMBER_REPORT", "member_report_from_a_later_hitl")
        response = await team.arun("Buy 8 shares of AMAT")
        [req] = response.active_requirements
        before = await updates_of(client, response.run_id)
        req.confirm(resolved_by="alice")
        done = await team.acontinue_run(response)
        assert done.status == RunStatus.completed and "Trader: bought 8 AMAT" in done.content, done
        assert await updates_of(client, req.member_run_id) == [TEAM_CONTINUE]
        assert await updates_of(client, response.run_id) == [*before, "wait_for_progress"]
    assert TRADES == [("INTC", 6), ("AMAT", 8)]


async def test_a_report_for_a_member_the_team_does_not_have_is_refused(make_team, running_worker, client):
    """``member_report`` names the team run and the member it does not know; the team records nothing."""
    team, _, _ = make_team()
    async with running_worker():
        response = await team.arun("Buy 1 shares of TXN")
        stranger = MemberProgress(member_run_id=f"{response.run_id}.nobody.1-x", agent_name="nobody", version=9)
        before = await updates_of(client, response.run_id)
        with pytest.raises(InvalidInputError, match=f"run {response.run_id} has no member run '{stranger.member_run_id}'"):
            await _runs._update(client, response.run_id, MEMBER_REPORT, MemberReport(progress=stranger), [])
        assert await updates_of(client, response.run_id) == before
        assert (await team.aget_run(response.run_id)).status == RunStatus.paused
        await _runs.cancel(client, response.run_id)


async def test_decisions_from_another_team_or_on_a_run_of_no_team_are_refused(make_team, running_worker, client):
    """``team_continue`` and ``team_decide`` name the run and what is wrong; nothing is recorded, nothing runs."""
    team, _, _ = make_team()
    TRADES.clear()
    async with running_worker():
        response = await team.arun("Buy 3 shares of QCOM")
        [req] = response.active_requirements
        member_id = req.id[len(req.member_run_id) + 1:]
        decision = Confirm(requirement_id=member_id, resolved_by="mallory")
        for name in (TEAM_CONTINUE, TEAM_DECIDE):
            with pytest.raises(InvalidInputError, match=f"run {req.member_run_id} works for team run {response.run_id}, "
                                                        f"not run-elsewhere; {name} refused"):
                await _runs._update(client, req.member_run_id, name,
                                    TeamDecisions(team_run_id="run-elsewhere", decisions=[decision]), [])
            with pytest.raises(InvalidInputError, match=f"run {response.run_id} is not a team member's run; it takes no {name}"):
                await _runs._update(client, response.run_id, name,
                                    TeamDecisions(team_run_id=response.run_id, decisions=[decision]), [])
        assert await updates_of(client, req.member_run_id) == []
        assert (await team.aget_run(response.run_id)).status == RunStatus.paused and TRADES == []
        await _runs.cancel(client, response.run_id)
