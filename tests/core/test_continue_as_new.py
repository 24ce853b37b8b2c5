"""Long runs continue-as-new without losing the conversation or the pending requirements."""

from __future__ import annotations

import asyncio

from hitl import RunStatus, tool


@tool(requires_confirmation=True)
def step(n: int) -> str:
    """Do step n."""
    return f"step {n} done"


@tool
def note(n: int) -> str:
    """Take a note."""
    return f"note {n}"


async def test_run_continues_as_new_across_pauses_and_keeps_everything(make_agent, script, running_worker, client, model_server):
    """With a tiny history limit the run continues-as-new several times and still finishes right."""
    turns = []
    for n in range(1, 6):
        turns.append({"tool_calls": [{"name": "note", "arguments": {"n": n}}, {"name": "step", "arguments": {"n": n}}]})
    turns.append({"content": "last: {results}"})
    model = script({"turns": turns})
    agent = make_agent(model, [step, note], history_event_limit=20)
    async with running_worker():
        response = await agent.arun("do five steps")
        seen_pauses = []
        while response.is_paused:
            seen_pauses.append(response.pauses)
            [req] = response.active_requirements
            req.confirm()
            response = await agent.acontinue_run(response.run_id, response.requirements)
        description = await client.get_workflow_handle(response.run_id).describe()
    assert seen_pauses == [1, 2, 3, 4, 5]
    assert response.status == RunStatus.completed and response.content == "last: note 5 | step 5 done"
    # The whole conversation reached the model after several continue-as-new.
    last = model_server.requests_for(model)[-1]["messages"]
    assert [m["content"] for m in last if m["role"] == "tool"] == [
        c for n in range(1, 6) for c in (f"note {n}", f"step {n} done")
    ]
    assert description.run_id != description.raw_description.workflow_execution_info.first_run_id


async def test_pending_requirement_survives_continue_as_new(make_agent, script, running_worker, client):
    """A run that continues-as-new while paused keeps the same requirement and takes a signal for it."""
    model = script({"turns": [
        *[{"tool_calls": [{"name": "step", "arguments": {"n": n}}]} for n in range(1, 7)],
        {"content": "{results}"},
    ]})
    agent = make_agent(model, [step, note], history_event_limit=20)
    async with running_worker():
        response = await agent.arun("six steps")
        handle = client.get_workflow_handle(response.run_id)
        first_run = (await handle.describe()).run_id
        while (await handle.describe()).run_id == first_run:
            assert response.is_paused, "the run ended before it continued-as-new"
            response.active_requirements[0].confirm()
            response = await agent.acontinue_run(response.run_id, response.requirements)
        loaded = await agent.aget_run(response.run_id)
        assert loaded.is_paused and loaded.pauses == response.pauses
        assert [r.id for r in loaded.active_requirements] == [r.id for r in response.active_requirements]
        while response.is_paused:
            await handle.signal("confirm", {"requirement_id": response.active_requirements[0].id})
            for _ in range(100):
                now = await agent.aget_run(response.run_id)
                if now.status.is_final or (now.is_paused and now.pauses != response.pauses):
                    break
                await asyncio.sleep(0.05)
            response = now
    assert response.status == RunStatus.completed and response.content == "step 6 done"
