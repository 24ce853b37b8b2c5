"""Bad input gets a clear error and changes nothing; decisions apply exactly once."""

from __future__ import annotations

import asyncio

import pytest

from hitl import (
    InvalidDecisionError,
    RequirementAlreadyResolvedError,
    RequirementNotFoundError,
    RunEndedError,
    RunNotFoundError,
    RunStatus,
    UnresolvedRequirementsError,
    tool,
)
from hitl.decisions import Confirm
from hitl.run import RunOutput

calls: list[str] = []


@tool(requires_confirmation=True)
def pay(amount: int, to: str) -> str:
    """Pay someone."""
    calls.append(f"{amount}->{to}")
    return f"paid {amount} to {to}"


@tool(requires_user_input=True, user_input_fields=["count", "when"])
def order(item: str, count: int, when: str) -> str:
    """Order items."""
    return f"{count} x {item} at {when}"


def two_payments(script):
    return script({"turns": [
        {"tool_calls": [{"name": "pay", "arguments": {"amount": 1, "to": "a"}},
                        {"name": "pay", "arguments": {"amount": 2, "to": "b"}}]},
        {"content": "{results}"}]})


def one_payment(script):
    return script({"turns": [{"tool_calls": [{"name": "pay", "arguments": {"amount": 5, "to": "c"}}]},
                              {"content": "{results}"}]})


async def test_unknown_run_id_is_refused(make_agent, script, running_worker):
    """continue_run and get_run on a run id that does not exist say so."""
    agent = make_agent(one_payment(script), [pay])
    with pytest.raises(RunNotFoundError, match="run-does-not-exist"):
        await agent.aget_run("run-does-not-exist")
    with pytest.raises(RunNotFoundError, match="run-does-not-exist"):
        await agent.acontinue_run("run-does-not-exist", [])


async def test_unknown_requirement_id_is_refused_and_changes_nothing(make_agent, script, running_worker):
    """A decision on a requirement the run does not have is refused; the run stays paused."""
    agent = make_agent(one_payment(script), [pay])
    async with running_worker():
        response = await agent.arun("pay")
        with pytest.raises(RequirementNotFoundError, match="req-nope"):
            await _continue_raw(agent, response.run_id, [Confirm(requirement_id="req-nope")])
        assert (await agent.aget_run(response.run_id)).active_requirements[0].id == response.requirements[0].id


async def _continue_raw(agent, run_id, decisions):
    from hitl._core import client as _client
    from hitl._core import continuing
    from hitl.run import RunRequirement, ToolExecution

    reqs = []
    for d in decisions:
        r = RunRequirement(id=d.requirement_id, kind="confirmation", tool_execution=ToolExecution(tool_name="x", tool_call_id="x"))
        r._decision = d
        reqs.append(r)
    return await continuing.continue_(await _client.connect(agent._settings), run_id, reqs)


async def test_continue_run_names_the_requirements_left_unresolved(make_agent, script, running_worker):
    """continue_run with one of two requirements decided is refused and names the other."""
    agent = make_agent(two_payments(script), [pay])
    async with running_worker():
        response = await agent.arun("pay both")
        first, second = response.active_requirements
        first.confirm()
        with pytest.raises(UnresolvedRequirementsError, match=second.id):
            await agent.acontinue_run(response.run_id, response.requirements)
        still = await agent.aget_run(response.run_id)
        assert still.is_paused and len(still.active_requirements) == 2


async def test_second_decision_on_a_resolved_requirement_is_refused(make_agent, script, running_worker):
    """A stale RunOutput cannot make a tool run again."""
    calls.clear()
    agent = make_agent(one_payment(script), [pay])
    async with running_worker():
        response = await agent.arun("pay")
        response.active_requirements[0].confirm()
        done = await agent.acontinue_run(response.run_id, response.requirements)
        assert done.status == RunStatus.completed
        with pytest.raises(RequirementAlreadyResolvedError, match="already resolved: confirmed; the run has since ended"):
            await agent.acontinue_run(response.run_id, response.requirements)
        with pytest.raises(RequirementAlreadyResolvedError):
            done.requirements[0].confirm()
    assert calls == ["5->c"]


async def test_stale_output_from_an_earlier_pause_is_refused(make_agent, script, running_worker):
    """Decisions from a pause already passed are refused while the run waits at a later one."""
    calls.clear()
    model = script({"turns": [
        {"tool_calls": [{"name": "pay", "arguments": {"amount": 1, "to": "a"}}]},
        {"tool_calls": [{"name": "pay", "arguments": {"amount": 2, "to": "b"}}]},
        {"content": "{results}"}]})
    agent = make_agent(model, [pay])
    async with running_worker():
        first = await agent.arun("pay twice")
        first.active_requirements[0].confirm()
        second = await agent.acontinue_run(first.run_id, first.requirements)
        assert second.is_paused and second.pauses == 2
        with pytest.raises(RequirementAlreadyResolvedError, match="earlier pause"):
            await agent.acontinue_run(first.run_id, first.requirements)
    assert calls == ["1->a"]


async def test_input_that_fails_the_schema_is_refused(make_agent, script, running_worker):
    """provide_input with a wrong type, a missing field or an unknown one says what is wrong."""
    model = script({"turns": [{"tool_calls": [{"name": "order", "arguments": {"item": "pens"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [order])
    async with running_worker():
        response = await agent.arun("order pens")
        req = response.active_requirements[0]
        for bad, message in [
            ({"count": "many", "when": "now"}, "count"),
            ({"count": 3}, r"missing fields \['when'\]"),
            ({"count": 3, "when": "now", "colour": "red"}, "colour"),
            ("just one value", "2 fields are asked"),
        ]:
            req._decision = None
            req.provide_input(bad)
            with pytest.raises(InvalidDecisionError, match=message):
                await agent.acontinue_run(response.run_id, response.requirements)
        req._decision = None
        req.provide_input({"count": 3, "when": "now"})
        done = await agent.acontinue_run(response.run_id, response.requirements)
    assert done.content == "3 x pens at now"


async def test_corrected_arguments_are_validated(make_agent, script, running_worker):
    """confirm(arguments=...) with arguments that fail the tool's schema is refused."""
    agent = make_agent(one_payment(script), [pay])
    async with running_worker():
        response = await agent.arun("pay")
        response.active_requirements[0].confirm(arguments={"amount": "lots", "to": "c"})
        with pytest.raises(InvalidDecisionError, match="amount"):
            await agent.acontinue_run(response.run_id, response.requirements)


def test_wrong_kind_of_decision_is_refused_locally():
    """confirm() on a user-input requirement is refused before anything is sent."""
    from hitl.run import RunRequirement, ToolExecution

    req = RunRequirement(id="r", kind="user_input", tool_execution=ToolExecution(tool_name="order", tool_call_id="c"))
    with pytest.raises(InvalidDecisionError, match="needs user_input"):
        req.confirm()


async def test_two_callers_at_once_run_the_tool_once(make_agent, script, running_worker):
    """Concurrent continue_run calls: one wins, the other gets a clear error, the tool runs once."""
    calls.clear()
    agent = make_agent(one_payment(script), [pay])
    async with running_worker():
        response = await agent.arun("pay")
        copies = [await agent.aget_run(response.run_id) for _ in range(4)]
        for c in copies:
            c.active_requirements[0].confirm()
        results = await asyncio.gather(
            *(agent.acontinue_run(c.run_id, c.requirements) for c in copies), return_exceptions=True
        )
    wins = [r for r in results if not isinstance(r, BaseException)]
    losses = [r for r in results if isinstance(r, BaseException)]
    assert len(wins) == 1 and wins[0].status == RunStatus.completed
    assert all(isinstance(e, (RequirementAlreadyResolvedError, RunEndedError)) for e in losses), losses
    assert calls == ["5->c"]


async def test_a_decision_signalled_twice_is_harmless(make_agent, script, running_worker, client):
    """The same confirm signal sent twice runs the tool once."""
    calls.clear()
    agent = make_agent(one_payment(script), [pay])
    async with running_worker():
        response = await agent.arun("pay")
        handle = client.get_workflow_handle(response.run_id)
        rid = response.requirements[0].id
        await handle.signal("confirm", Confirm(requirement_id=rid, resolved_by="ops"))
        await handle.signal("confirm", Confirm(requirement_id=rid, resolved_by="ops"))
        await handle.signal("reject", {"requirement_id": rid, "reason": "late"})
        result = RunOutput.model_validate(await handle.result())
    assert result.status == RunStatus.completed and calls == ["5->c"]
    assert result.requirements[0].resolution == "confirmed" and result.requirements[0].resolved_by == "ops"


async def test_cancelled_run_reports_cancelled_and_takes_no_decisions(make_agent, script, running_worker, client):
    """Cancelling a paused run ends it as cancelled; a decision afterwards is refused."""
    agent = make_agent(one_payment(script), [pay])
    async with running_worker():
        response = await agent.arun("pay")
        await client.get_workflow_handle(response.run_id).cancel()
        for _ in range(100):
            loaded = await agent.aget_run(response.run_id)
            if loaded.status != RunStatus.paused:
                break
            await asyncio.sleep(0.05)
        assert loaded.status == RunStatus.cancelled
        response.active_requirements[0].confirm()
        with pytest.raises(RunEndedError, match="canceled|cancelled"):
            await agent.acontinue_run(response.run_id, response.requirements)
