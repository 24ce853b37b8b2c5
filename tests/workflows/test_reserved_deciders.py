"""The run's side of reserved names: nobody decides as a group or as hitl itself, whatever channel it uses."""

from __future__ import annotations

import pytest

from hitl import DecisionNotAllowedError, tool
from hitl.approval import approval
from hitl.policy import set_group_resolver

RAN: list[dict] = []


@approval(approvers=["group:finance"])
@tool(requires_confirmation=True)
def pay(amount: int) -> str:
    """Pay."""
    RAN.append({"amount": amount})
    return f"paid {amount}"


@tool(requires_confirmation=True)
def anyone(amount: int) -> str:
    """Anyone may decide this one (no approvers)."""
    RAN.append({"anyone": amount})
    return f"done {amount}"


def calls(script, name):
    return script({"turns": [{"tool_calls": [{"name": name, "arguments": {"amount": 5}}]}, {"content": "{results}"}]})


@pytest.fixture(autouse=True)
def _clean():
    RAN.clear()
    yield
    set_group_resolver(None)


async def test_a_decider_named_like_a_group_does_not_satisfy_the_group(make_agent, script, running_worker, client):
    """resolved_by="group:finance" is refused where approvers are group:finance and no resolver puts anyone in it;
    a member of the group by the resolver decides."""
    agent = make_agent(calls(script, "pay"), [pay])
    async with running_worker():
        run = await agent.arun("pay")
        req = run.requirements[0]
        req.confirm(resolved_by="group:finance")
        with pytest.raises(DecisionNotAllowedError, match="reserved"):
            await agent.acontinue_run(run.run_id, requirements=run.requirements)
        handle = client.get_workflow_handle(run.run_id)
        await handle.signal("confirm", {"action": "confirm", "requirement_id": req.id, "resolved_by": "GROUP:finance"})
        assert (await agent.aget_run(run.run_id)).is_paused and RAN == []
        set_group_resolver(lambda user: ["finance"] if user == "dana" else [])
        run = await agent.aget_run(run.run_id)
        run.requirements[0].confirm(resolved_by="dana")
        done = await agent.acontinue_run(run.run_id, requirements=run.requirements)
        assert done.content and "paid 5" in done.content and RAN == [{"amount": 5}]


async def test_nobody_decides_as_the_deadline(make_agent, script, running_worker):
    """resolved_by="system:timeout" is refused even where anyone may decide, so the trail's system:timeout is
    always the deadline's own."""
    agent = make_agent(calls(script, "anyone"), [anyone])
    async with running_worker():
        run = await agent.arun("go")
        run.requirements[0].reject(resolved_by="system:timeout")
        with pytest.raises(DecisionNotAllowedError, match="reserved"):
            await agent.acontinue_run(run.run_id, requirements=run.requirements)
        run = await agent.aget_run(run.run_id)
        assert run.is_paused and run.requirements[0].resolution is None
        run.requirements[0].confirm(resolved_by="ops")
        assert (await agent.acontinue_run(run.run_id, requirements=run.requirements)).status.value == "completed"
        assert RAN == [{"anyone": 5}]
