"""No input can wedge a run or poison its audit trail: odd encodings, NUL, sizes at every limit, a model gone wrong."""

from __future__ import annotations

import asyncio
import logging
import subprocess

import pytest
from pydantic import ValidationError

from hitl import InvalidDecisionError, InvalidInputError, PayloadTooLargeError, RunOutput, RunStatus, limits, tool
from hitl.decisions import ChangeApproval, Confirm, ContinueRunRequest, ProvideResult, Reject
from hitl.dev import stack

ran: list[str] = []


@tool(requires_confirmation=True)
def pay(amount: int, to: str) -> str:
    """Pay someone."""
    ran.append(f"{amount}->{to}")
    return f"paid {amount} to {to}"


@tool(requires_user_input=True, user_input_fields=["note"])
def annotate(item: str, note: str) -> str:
    """Annotate an item."""
    return f"{item}: {note}"


@tool(external_execution=True)
def build(target: str) -> str:
    """Built by CI."""
    return "never"


@tool
def dump(size: int) -> str:
    """Return a lot of text."""
    return "é" * size


def calls(script, *tool_calls, content="{results}"):
    return script({"turns": [{"tool_calls": [{"name": n, "arguments": a} for n, a in tool_calls]}, {"content": content}]})


async def record_of(db, run_id, requirement_id, status):
    for _ in range(200):
        record = await asyncio.to_thread(db.get_approval, f"{run_id}/{requirement_id}")
        if record is not None and record["status"] == status:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"{run_id}/{requirement_id} never became {status}: {record}")


async def refusal(handle, name, argument) -> str:
    """Send an update as a client that skips hitl's own checks would; the run's reason for refusing it."""
    from temporalio.client import WorkflowUpdateFailedError

    try:
        await handle.execute_update(name, argument)
    except WorkflowUpdateFailedError as exc:
        return f"{getattr(exc.cause, 'type', '')}: {getattr(exc.cause, 'message', exc.cause)}"
    raise AssertionError(f"{name} was accepted")


async def healthy(agent, run_id):
    """The run answers its query (its workflow task is not failing)."""
    return await asyncio.wait_for(agent.aget_run(run_id), 15)


async def test_a_binary_encoded_signal_is_refused_and_the_run_goes_on(make_agent, script, running_worker, temporal_server, db):
    """`temporal workflow signal --input-meta encoding=binary/plain`: dropped; queries, updates and the audit still work."""
    agent = make_agent(calls(script, ("pay", {"amount": 1, "to": "a"})), [pay], db=db)
    async with running_worker():
        paused = await agent.arun("pay")
        rid = paused.requirements[0].id
        for name in ("confirm", "reject", "continue_run", "change_approval", "team_decision", "member_progress"):
            out = subprocess.run(
                [stack.binary("temporal"), "workflow", "signal", "--address", temporal_server["address"],
                 "--workflow-id", paused.run_id, "--name", name, "--input-meta", "encoding=binary/plain",
                 "--input", f'{{"requirement_id": "{rid}", "resolved_by": "mallory"}}'],
                capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, out.stderr
        still = await healthy(agent, paused.run_id)
        assert still.is_paused and still.requirements[0].resolution is None, still
        still.requirements[0].confirm(resolved_by="alice")
        done = await agent.acontinue_run(still.run_id, still.requirements)
        assert done.status == RunStatus.completed and done.requirements[0].resolved_by == "alice"
        record = await record_of(db, paused.run_id, rid, "approved")
        assert record["resolved_by"] == "alice"


@pytest.mark.parametrize("field", ["resolved_by", "reason", "arguments", "input", "result"])
async def test_nul_in_a_decision_is_refused_before_it_reaches_the_run(make_agent, script, running_worker, db, client, field):
    """A NUL in any field of a decision: refused locally, by update and by signal; the run stays healthy, the trail whole."""
    tools = {"arguments": ("pay", {"amount": 1, "to": "a"}), "resolved_by": ("pay", {"amount": 1, "to": "a"}),
             "reason": ("pay", {"amount": 1, "to": "a"}), "input": ("annotate", {"item": "x"}), "result": ("build", {"target": "t"})}
    agent = make_agent(calls(script, tools[field]), [pay, annotate, build], db=db)
    bad = "a\x00b"
    async with running_worker():
        paused = await agent.arun("go")
        req = paused.requirements[0]
        decide = {
            "resolved_by": lambda r: r.confirm(resolved_by=bad),
            "reason": lambda r: r.reject(reason=bad),
            "arguments": lambda r: r.confirm(arguments={"amount": 1, "to": bad}),
            "input": lambda r: r.provide_input({"note": bad}),
            "result": lambda r: r.provide_result({"log": bad}),
        }[field]
        with pytest.raises(InvalidDecisionError, match="NUL"):
            decide(req)
        payload = {"resolved_by": {"requirement_id": req.id, "resolved_by": bad},
                   "reason": {"requirement_id": req.id, "reason": bad, "action": "reject"},
                   "arguments": {"requirement_id": req.id, "arguments": {"amount": 1, "to": bad}},
                   "input": {"requirement_id": req.id, "value": {"note": bad}, "action": "provide_input"},
                   "result": {"requirement_id": req.id, "result": {"log": bad}, "action": "provide_result"}}[field]
        signal = {"resolved_by": "confirm", "reason": "reject", "arguments": "confirm", "input": "provide_input",
                  "result": "provide_result"}[field]
        handle = client.get_workflow_handle(paused.run_id)
        await handle.signal(signal, {k: v for k, v in payload.items() if k != "action"})
        # the run's own validator, for a client that skipped ours
        why = await refusal(handle, "continue_run", {"decisions": [{**payload, "action": payload.get("action", "confirm")}]})
        assert why.startswith("InvalidDecisionError") and "NUL" in why, why
        still = await healthy(agent, paused.run_id)
        assert still.is_paused and still.requirements[0].resolution is None
        req = still.requirements[0]
        {"input": lambda r: r.provide_input({"note": "fine"}), "result": lambda r: r.provide_result("ok")}.get(
            field, lambda r: r.confirm(resolved_by="alice"))(req)
        done = await agent.acontinue_run(still.run_id, still.requirements)
        assert done.status == RunStatus.completed
        record = await record_of(db, paused.run_id, req.id, "approved")
        events = [e["kind"] for e in await asyncio.to_thread(db.get_approval_events, record["id"])]
        assert events[0] == "requested" and events[-1] in ("confirmed", "input_provided", "result_provided")
        assert await asyncio.to_thread(db.verify_event_chain, record["id"]) is None


async def test_the_models_tool_arguments_nested_too_deep_are_told_to_the_model_not_retried(make_agent, script, running_worker, db):
    """Arguments nested 300 levels (a prompt injection can ask for that): the call is not made, the model reads
    why, the run completes; before, the turn failed to encode and each retry was another paid model call."""
    deep: object = "x"
    for _ in range(300):
        deep = {"a": deep}
    agent = make_agent(calls(script, ("pay", {"amount": 1, "to": "a", "memo": deep})), [pay], db=db)
    async with running_worker():
        done = await asyncio.wait_for(agent.arun("pay"), 60)
    assert done.status == RunStatus.completed and "nest deeper than" in done.content, done
    assert await asyncio.to_thread(db.get_approvals) == ([], 0)


async def test_nul_in_the_models_tool_arguments_is_told_to_the_model_not_recorded(make_agent, script, running_worker, db):
    """The model's call with a NUL never becomes an approval: the model is told why, and the run completes."""
    agent = make_agent(calls(script, ("pay", {"amount": 1, "to": "a\u0000b"})), [pay], db=db)
    async with running_worker():
        done = await agent.arun("pay")
    assert done.status == RunStatus.completed and "NUL" in done.content and "cannot be recorded" in done.content
    assert await asyncio.to_thread(db.get_approvals) == ([], 0)


async def test_nul_in_a_run_input_or_an_approval_change_is_refused(make_agent, script, running_worker, db):
    """user_id, session_id, the message and change_approval's fields: refused with the field named."""
    agent = make_agent(calls(script, ("pay", {"amount": 1, "to": "a"})), [pay], db=db)
    async with running_worker():
        for kwargs, field in [({"user_id": "u\x00"}, "user_id"), ({"session_id": "s\x00"}, "session_id"),
                              ({"run_id": "run-\x00"}, "run_id")]:
            with pytest.raises(InvalidInputError, match=field):
                await agent.arun("pay", **kwargs)
        with pytest.raises(InvalidInputError, match="message"):
            await agent.arun("pay \x00")
        with pytest.raises(InvalidInputError, match="run_id"):
            await agent.arun("pay", run_id="r" * 300)
        paused = await agent.arun("pay")
        with pytest.raises(InvalidDecisionError, match="NUL"):
            await agent.achange_approval(paused.run_id, paused.requirements[0].id, changed_by="ops\x00")
        with pytest.raises(InvalidDecisionError, match="NUL"):
            await agent.achange_approval(paused.run_id, paused.requirements[0].id, approvers=["al\x00ice"])
        assert (await healthy(agent, paused.run_id)).is_paused


async def test_a_result_just_under_the_decision_limit_is_taken_and_one_over_is_refused_everywhere(
        make_agent, script, running_worker, db, client):
    """provide_result at the limit's edge: under, recorded whole; over, refused locally, by update and by signal."""
    agent = make_agent(calls(script, ("build", {"target": "t"}), content="got {results}"), [build], db=db)
    room = limits.MAX_DECISION_BYTES - 200  # what the rest of the decision's JSON takes
    async with running_worker():
        paused = await agent.arun("build")
        req = paused.requirements[0]
        for size in (limits.MAX_DECISION_BYTES + 1, int(1.4 * 1024 * 1024), 3 * 1024 * 1024):
            with pytest.raises(PayloadTooLargeError, match="MAX_DECISION_BYTES"):
                req.provide_result("x" * size)
        handle = client.get_workflow_handle(paused.run_id)
        over = ProvideResult(requirement_id=req.id, result="x" * (limits.MAX_DECISION_BYTES + 1))
        await handle.signal("provide_result", over)
        why = await refusal(handle, "continue_run", ContinueRunRequest(decisions=[over]))
        assert why.startswith("PayloadTooLargeError") and "MAX_DECISION_BYTES" in why, why
        still = await healthy(agent, paused.run_id)
        assert still.is_paused and still.requirements[0].resolution is None
        still.requirements[0].provide_result("y" * room)
        done = await agent.acontinue_run(still.run_id, still.requirements)
        assert done.status == RunStatus.completed and done.content == "got " + "y" * room
        record = await record_of(db, paused.run_id, req.id, "approved")
    assert record["resolution"]["result"] == "y" * room


async def test_decisions_that_would_grow_the_runs_output_past_its_limit_are_refused(make_agent, script, running_worker):
    """Five external results of 240 KiB: four fit in a run's output, the fifth is refused; a small fifth completes the run."""
    agent = make_agent(calls(script, *[("build", {"target": f"t{i}"}) for i in range(5)], content="done"), [build])
    chunk = "z" * (240 * 1024)
    async with running_worker():
        paused = await agent.arun("build all")
        reqs = paused.requirements
        for r in reqs[:4]:
            r.provide_result(chunk)
        from hitl._core import client as _client
        from hitl._core import runs

        c = await _client.connect(agent._settings)
        for r in reqs[:4]:
            await runs.decide(c, paused.run_id, r.decision)
        reqs[4].provide_result(chunk)
        with pytest.raises(PayloadTooLargeError, match="MAX_OUTPUT_BYTES"):
            await runs.decide(c, paused.run_id, reqs[4].decision)
        reqs[4]._decision = None
        reqs[4].provide_result("small")
        await runs.decide(c, paused.run_id, reqs[4].decision)
        done = RunOutput.model_validate(await c.get_workflow_handle(paused.run_id).result())
    assert done.status == RunStatus.completed and done.content == "done"


async def test_a_continue_run_over_the_request_limit_is_refused_before_sending(make_agent, script, running_worker):
    """Many decisions whose total is over MAX_REQUEST_BYTES: refused locally, the run untouched."""
    agent = make_agent(calls(script, *[("build", {"target": f"t{i}"}) for i in range(6)], content="done"), [build])
    async with running_worker():
        paused = await agent.arun("build all")
        for r in paused.requirements:
            r.provide_result("q" * (200 * 1024))
        with pytest.raises(PayloadTooLargeError, match="MAX_REQUEST_BYTES"):
            await agent.acontinue_run(paused.run_id, paused.requirements)
        assert (await healthy(agent, paused.run_id)).is_paused


async def test_a_message_over_its_limit_is_refused(make_agent, script, running_worker):
    """A run cannot start with a message over MAX_MESSAGE_BYTES; one just under starts."""
    agent = make_agent(script({"turns": [{"content": "ok"}]}), [])
    async with running_worker():
        with pytest.raises(PayloadTooLargeError, match="MAX_MESSAGE_BYTES"):
            await agent.arun("m" * (limits.MAX_MESSAGE_BYTES + 1))
        done = await agent.arun("m" * (limits.MAX_MESSAGE_BYTES - 10))
    assert done.content == "ok"


async def test_a_tool_output_over_its_limit_is_cut_with_a_note(make_agent, script, running_worker):
    """A tool returning 100,000 two-byte characters: the model reads 64,000 and a note of what was cut."""
    agent = make_agent(calls(script, ("dump", {"size": 100_000})), [dump])
    async with running_worker():
        done = await agent.arun("dump")
    assert done.content.startswith("é" * limits.MAX_TOOL_OUTPUT_CHARS) and "[truncated 36000 characters]" in done.content


HUGE = "h" * (limits.MAX_MODEL_TURN_BYTES + 1024)


async def test_a_model_answer_over_its_limit_is_asked_again_with_a_note(make_agent, script, running_worker, model_server):
    """The first answer is too large: the model is asked again, told why, and its brief answer is the run's."""
    model = script({"match": "previous answer was", "turns": [{"content": "brief"}]}, {"turns": [{"content": HUGE}]})
    agent = make_agent(model, [])
    async with running_worker():
        done = await agent.arun("talk")
    assert done.status == RunStatus.completed and done.content == "brief"
    asked = model_server.requests_for(model)
    assert "over the limit" in asked[-1]["messages"][-1]["content"]


async def test_a_model_answer_too_large_twice_fails_the_run_clearly(make_agent, script, running_worker):
    """Too large again when asked to be brief: the run fails at once, saying so; no silent loop."""
    agent = make_agent(script({"turns": [{"content": HUGE}]}), [])
    async with running_worker():
        done = await agent.arun("talk")
    assert done.status == RunStatus.error
    assert "MAX_MODEL_TURN_BYTES" in done.error and agent.model.id in done.error


async def test_a_truncated_model_body_is_retried_and_named_as_bad_json(make_agent, script, running_worker, caplog):
    """HTTP 200 with half a JSON body: retried by Temporal; the failure names the model and says the JSON is bad."""
    model = script({"turns": [{"content": "whole", "fail": {"status": 200, "truncate": True, "times": 1}}]})
    agent = make_agent(model, [])
    with caplog.at_level(logging.WARNING):
        async with running_worker():
            done = await agent.arun("talk")
    assert done.status == RunStatus.completed and done.content == "whole"
    messages = " ".join(r.getMessage() + str(r.exc_info and r.exc_info[1]) for r in caplog.records)
    assert "not valid JSON" in messages and model in messages, messages[-2000:]


async def test_a_team_decision_signal_to_a_run_that_is_no_team_member_is_refused(make_agent, script, running_worker, client):
    """team_decision from any client cannot decide a standalone run."""
    ran.clear()
    agent = make_agent(calls(script, ("pay", {"amount": 3, "to": "z"})), [pay])
    async with running_worker():
        paused = await agent.arun("pay")
        rid = paused.requirements[0].id
        await client.get_workflow_handle(paused.run_id).signal(
            "team_decision", {"decision": {"action": "confirm", "requirement_id": rid}, "team_run_id": "run-forged"})
        still = await healthy(agent, paused.run_id)
    assert still.is_paused and still.requirements[0].resolution is None and ran == []


async def test_wrong_shapes_by_signal_and_update_are_refused(make_agent, script, running_worker, client):
    """A string where a decision belongs, unknown fields, a number for the pause: refused, the run healthy."""
    agent = make_agent(calls(script, ("pay", {"amount": 1, "to": "a"})), [pay])
    async with running_worker():
        paused = await agent.arun("pay")
        handle = client.get_workflow_handle(paused.run_id)
        await handle.signal("confirm", "not a decision")
        await handle.signal("reject", {"requirement_id": paused.requirements[0].id, "colour": "red"})
        await handle.signal("member_progress", [1, 2, 3])
        assert "InvalidInputError" in await refusal(handle, "wait_for_progress", "soon")
        assert "InvalidInputError" in await refusal(handle, "decide", {"action": "explode"})
        assert (await healthy(agent, paused.run_id)).is_paused
        paused.requirements[0].reject(reason="no")
        done = await agent.acontinue_run(paused.run_id, paused.requirements)
    assert done.status == RunStatus.completed


def test_query_api_refuses_values_of_the_wrong_type_with_a_hitl_error(db):
    """filters of the wrong type, times out of range, NUL in a filter: InvalidInputError, never a raw psycopg error."""
    with pytest.raises(InvalidInputError, match="run_id"):
        db.get_approvals(filters={"run_id": {"$ne": 1}})
    with pytest.raises(InvalidInputError, match="out of range"):
        db.get_approvals(filters={"created_at_gte": 1e20})
    with pytest.raises(InvalidInputError, match="NUL"):
        db.get_approvals(filters={"tool_name": "a\x00"})
    with pytest.raises(InvalidInputError):
        db.get_approvals(limit=0)
    with pytest.raises(InvalidInputError):
        db.get_approval(42)  # type: ignore[arg-type]
    assert db.get_approvals(filters={"tool_name": "nothing"}) == ([], 0)


def test_confirm_and_reject_models_refuse_what_would_not_fit(db):
    """The payload models bound their own fields: resolved_by and reason lengths, approvers' entries."""
    with pytest.raises(ValidationError, match=r"resolved_by\n\s+String should have at most 256 characters"):
        Confirm(requirement_id="r", resolved_by="x" * 300)
    with pytest.raises(ValidationError, match=r"reason\n\s+String should have at most 4000 characters"):
        Reject(requirement_id="r", reason="x" * 5000)
    with pytest.raises(ValidationError, match=r"approvers\.0\n\s+String should have at most 256 characters"):
        ChangeApproval(requirement_id="r", approvers=["x" * 300])
    with pytest.raises(ValidationError, match=r"approvers\.1\n\s+String should have at least 1 character"):
        ChangeApproval(requirement_id="r", approvers=["alice", ""])
    assert ChangeApproval(requirement_id="r", approvers=["x" * 256]).approvers == ["x" * 256]  # the bound itself fits


async def test_an_event_postgresql_refuses_is_quarantined_and_the_trail_stays_whole(db):
    """An event holding a NUL (from a history older than the checks): a storable copy on the trail, the original kept."""
    from hitl._wire import ApprovalEvent

    def event(seq, kind, status, **extra):
        return ApprovalEvent(approval_id="run-q/req-1", seq=seq, kind=kind, at=1_796_000_000 + seq, run_id="run-q",
                             requirement_id="req-1", agent_name="a", requirement_kind="confirmation", approval_type="required",
                             status=status, context={"tool_name": "pay", "arguments": {"to": "x"}}, arguments_digest="d",
                             created_at=1_796_000_000, **extra)

    poisoned = event(2, "confirmed", "approved", resolved_by="ops\x00", payload={"note": "a\x00b"})
    batch = [event(1, "requested", "pending"), poisoned, event(3, "refused", "approved", payload={"why": "late"}, resolved_by="ops")]
    assert await db.write_events(batch) == ["run-q/req-1#2"]
    assert await db.write_events(batch) == ["run-q/req-1#2"]  # a retried write changes nothing
    record = db.get_approval("run-q/req-1")
    assert record["status"] == "approved" and record["resolved_by"] == "ops"
    events = db.get_approval_events("run-q/req-1")
    assert [e["kind"] for e in events] == ["requested", "confirmed", "refused"]
    assert events[1]["payload"]["note"] == "a\ufffdb" and "quarantined" in events[1]["payload"]
    assert db.verify_event_chain("run-q/req-1") is None
    import json

    import psycopg

    with psycopg.connect(db.db_url) as conn:
        [(error, original)] = conn.execute(
            f"SELECT error, event FROM {db.approvals_table}_quarantine WHERE approval_id = 'run-q/req-1'").fetchall()
    assert "NUL" in error and json.loads(original)["resolved_by"] == "ops\x00"
