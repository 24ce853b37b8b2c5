"""Who may decide, and what the deadline does: approvers, separation of duties, timeouts.

Deadline tests run on Temporal's time-skipping test server: a day passes in milliseconds. Time
is skipped with env.sleep: the server does not skip it while a client long-polls a result here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from hitl import Agent, DecisionNotAllowedError, OpenAIChat, RunStatus, tool
from hitl.approval import approval
from hitl.dev import stack
from hitl.policy import SYSTEM_TIMEOUT, set_group_resolver
from hitl.run import RunOutput
from hitl.worker import create_worker


@pytest.fixture(scope="module")
async def skipping() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=stack.binary("temporal-test-server"), data_converter=pydantic_data_converter
    )
    yield env
    await env.shutdown()


def payment_tool(**policy):
    @approval(**policy)
    @tool(requires_confirmation=True)
    def pay(amount: int, to: str) -> str:
        """Pay someone."""
        return f"paid {amount} to {to}"

    return pay


def pay_script(script):
    return script({"turns": [{"tool_calls": [{"name": "pay", "arguments": {"amount": 500, "to": "acme"}}]},
                              {"content": "{results}"}]})


def skipping_agent(env, model_server, model, tools, **kwargs) -> Agent:
    return Agent(OpenAIChat(model, base_url=model_server.base_url), name=f"agent-{uuid.uuid4().hex[:8]}",
                 tools=tools, task_queue=f"tq-{uuid.uuid4().hex[:8]}", client=env.client, **kwargs)


async def test_deadline_rejects_and_the_model_is_told_why(skipping, model_server, script):
    """on_timeout='reject' (the default): after the timeout the call is not run and the model reads why."""
    agent = skipping_agent(skipping, model_server, pay_script(script), [payment_tool(timeout=timedelta(days=1))])
    async with create_worker(skipping.client, agent.task_queue):
        paused = await agent.arun("pay acme")
        [req] = paused.active_requirements
        assert req.deadline == pytest.approx(req.created_at + 86400, abs=1)
        await skipping.sleep(timedelta(days=1, minutes=1))
        result = RunOutput.model_validate(await skipping.client.get_workflow_handle(paused.run_id).result())
    assert result.status == RunStatus.completed
    assert "was not run: the request expired: nobody decided within 86400 s" in result.content
    [expired] = result.requirements
    assert expired.resolution == "expired" and expired.resolved_by == SYSTEM_TIMEOUT
    assert expired.resolved_at - expired.created_at >= 86400


async def test_a_decision_before_the_deadline_wins(skipping, model_server, script):
    """Confirmed a minute before the deadline: the tool runs and the deadline does nothing later."""
    agent = skipping_agent(skipping, model_server, pay_script(script), [payment_tool(timeout=timedelta(hours=4))])
    async with create_worker(skipping.client, agent.task_queue):
        paused = await agent.arun("pay acme")
        await skipping.sleep(timedelta(hours=3, minutes=59))
        paused.active_requirements[0].confirm(resolved_by="alice")
        done = await agent.acontinue_run(paused.run_id, paused.requirements)
        result = RunOutput.model_validate(await skipping.client.get_workflow_handle(paused.run_id).result())
    assert done.content == "paid 500 to acme" and result.requirements[0].resolved_by == "alice"


async def test_deadline_may_approve_when_the_policy_says_so(skipping, model_server, script):
    """on_timeout='approve' runs the tool at the deadline, decided by system:timeout."""
    agent = skipping_agent(skipping, model_server, pay_script(script),
                           [payment_tool(timeout=timedelta(minutes=30), on_timeout="approve")])
    async with create_worker(skipping.client, agent.task_queue):
        paused = await agent.arun("pay acme")
        await skipping.sleep(timedelta(minutes=31))
        result = RunOutput.model_validate(await skipping.client.get_workflow_handle(paused.run_id).result())
    assert result.content == "paid 500 to acme" and result.requirements[0].resolved_by == SYSTEM_TIMEOUT


async def test_deadline_may_cancel_the_run(skipping, model_server, script):
    """on_timeout='cancel' ends the run as cancelled, saying which approval expired."""
    agent = skipping_agent(skipping, model_server, pay_script(script),
                           [payment_tool(timeout=timedelta(hours=1), on_timeout="cancel")])
    async with create_worker(skipping.client, agent.task_queue):
        paused = await agent.arun("pay acme")
        await skipping.sleep(timedelta(hours=1, minutes=1))
        result = RunOutput.model_validate(await skipping.client.get_workflow_handle(paused.run_id).result())
        loaded = await agent.aget_run(paused.run_id)
    assert result.status == RunStatus.cancelled and "expired" in result.content and loaded.status == RunStatus.cancelled


async def test_only_approvers_may_decide(make_agent, script, running_worker):
    """A decision by a non-approver, or by nobody named, is refused and changes nothing; a group member may."""
    set_group_resolver(lambda user: {"bob": ["finance"]}.get(user, []))
    try:
        agent = make_agent(pay_script(script), [payment_tool(approvers=["alice", "group:finance"])])
        async with running_worker():
            paused = await agent.arun("pay acme")
            [req] = paused.active_requirements
            assert req.approvers == ["alice", "group:finance"]
            for who, message in (("mallory", "not among the approvers"), (None, "must say who")):
                req._decision = None
                req.confirm(resolved_by=who)
                with pytest.raises(DecisionNotAllowedError, match=message):
                    await agent.acontinue_run(paused.run_id, paused.requirements)
                assert (await agent.aget_run(paused.run_id)).active_requirements
            req._decision = None
            req.confirm(resolved_by="bob")
            done = await agent.acontinue_run(paused.run_id, paused.requirements)
        assert done.content == "paid 500 to acme" and done.requirements[0].resolved_by == "bob"
    finally:
        set_group_resolver(None)


async def test_separation_of_duties_bars_the_requester(make_agent, script, running_worker):
    """With separation_of_duties, the run's own user may not approve its request."""
    agent = make_agent(pay_script(script), [payment_tool(separation_of_duties=True)])
    async with running_worker():
        paused = await agent.arun("pay acme", user_id="alice")
        paused.active_requirements[0].confirm(resolved_by="alice")
        with pytest.raises(DecisionNotAllowedError, match="separation of duties"):
            await agent.acontinue_run(paused.run_id, paused.requirements)
        [req] = paused.requirements
        req._decision = None
        req.reject(reason="no", resolved_by="carol")
        done = await agent.acontinue_run(paused.run_id, paused.requirements)
    assert done.requirements[0].resolved_by == "carol"


async def test_expiry_and_refused_attempts_are_on_the_audit_trail(skipping, model_server, script, database_url):
    """A non-approver's attempt is recorded as refused; the deadline leaves the record expired."""
    import asyncio

    from hitl import PostgresDb

    db = PostgresDb(database_url, approvals_table=f"approvals_{uuid.uuid4().hex[:8]}")
    db.migrate()
    agent = skipping_agent(skipping, model_server, pay_script(script),
                           [payment_tool(approvers=["alice"], timeout=timedelta(hours=1))], db=db)
    async with create_worker(skipping.client, agent.task_queue):
        paused = await agent.arun("pay acme")
        paused.active_requirements[0].confirm(resolved_by="mallory")
        with pytest.raises(DecisionNotAllowedError):
            await agent.acontinue_run(paused.run_id, paused.requirements)
        await skipping.sleep(timedelta(hours=1, minutes=1))
        approval_id = f"{paused.run_id}/{paused.requirements[0].id}"
        for _ in range(100):
            record = db.get_approval(approval_id)
            if record and record["status"] == "expired":
                break
            await asyncio.sleep(0.05)
    assert record["status"] == "expired" and record["resolved_by"] == SYSTEM_TIMEOUT
    assert record["context"]["policy"]["approvers"] == ["alice"]
    events = db.get_approval_events(approval_id)
    assert [e["kind"] for e in events] == ["requested", "refused", "expired"]
    assert events[1]["payload"]["resolved_by"] == "mallory" and "not among the approvers" in events[1]["payload"]["reason"]
    assert db.verify_event_chain(approval_id) is None
    db.close()


async def test_extending_the_deadline_moves_the_timer(skipping, model_server, script):
    """An extension by update: the old deadline passes quietly, the new one acts."""
    agent = skipping_agent(skipping, model_server, pay_script(script), [payment_tool(timeout=timedelta(hours=1))])
    async with create_worker(skipping.client, agent.task_queue):
        paused = await agent.arun("pay acme")
        [req] = paused.requirements
        moved = await agent.achange_approval(paused.run_id, req.id, extend_by=timedelta(hours=2), changed_by="ops")
        assert moved.requirements[0].deadline == pytest.approx(req.deadline + 7200, abs=1)
        await skipping.sleep(timedelta(hours=2))
        assert (await agent.aget_run(paused.run_id)).is_paused  # the first deadline did nothing
        await skipping.sleep(timedelta(hours=1, minutes=1))
        result = await agent.aget_run(paused.run_id)
    assert result.status == RunStatus.completed and result.requirements[0].resolution == "expired"


async def test_reassignment_changes_who_may_decide(skipping, model_server, script):
    """Reassigned by signal from alice to dana: alice is refused, dana decides."""
    from hitl.decisions import ChangeApproval

    agent = skipping_agent(skipping, model_server, pay_script(script), [payment_tool(approvers=["alice"])])
    async with create_worker(skipping.client, agent.task_queue):
        paused = await agent.arun("pay acme")
        [req] = paused.requirements
        await skipping.client.get_workflow_handle(paused.run_id).signal(
            "change_approval", ChangeApproval(requirement_id=req.id, approvers=["dana"], changed_by="ops"))
        req.confirm(resolved_by="alice")
        with pytest.raises(DecisionNotAllowedError, match=r"\['dana'\]"):
            await agent.acontinue_run(paused.run_id, paused.requirements)
        req._decision = None
        req.confirm(resolved_by="dana")
        done = await agent.acontinue_run(paused.run_id, paused.requirements)
    assert done.content == "paid 500 to acme" and done.requirements[0].approvers == ["dana"]


async def test_quorum_needs_distinct_approvers_and_any_may_reject(make_agent, script, running_worker):
    """quorum=2: one confirmation leaves the run paused, the same person twice is refused, a second runs it."""
    from hitl import InvalidDecisionError

    agent = make_agent(pay_script(script), [payment_tool(approvers=["alice", "bob", "carol"], quorum=2)])
    async with running_worker():
        paused = await agent.arun("pay acme")
        [req] = paused.requirements
        req.confirm(resolved_by="alice")
        half = await agent.acontinue_run(paused.run_id, paused.requirements)
        assert half.is_paused and half.requirements[0].approvals == ["alice"] and half.active_requirements
        [again] = half.requirements
        again.confirm(resolved_by="alice")
        with pytest.raises(InvalidDecisionError, match="already approved"):
            await agent.acontinue_run(half.run_id, half.requirements)
        again._decision = None
        again.confirm(resolved_by="bob")
        done = await agent.acontinue_run(half.run_id, half.requirements)
        assert done.content == "paid 500 to acme" and done.requirements[0].approvals == ["alice", "bob"]

        rejected = await agent.arun("pay acme again")
        rejected.requirements[0].confirm(resolved_by="alice")
        still = await agent.acontinue_run(rejected.run_id, rejected.requirements)
        still.requirements[0].reject(reason="not this one", resolved_by="carol")
        final = await agent.acontinue_run(still.run_id, still.requirements)
    assert "rejected by carol" in final.content


async def test_agent_rules_gate_undecorated_tools_by_name_and_by_arguments(make_agent, script, running_worker):
    """ApprovalRule on the Agent: a named tool always asks; another asks only above an amount."""
    from hitl.policy import ApprovalPolicy, ApprovalRule

    @tool
    def delete_user(user_id: str) -> str:
        """Delete a user."""
        return f"deleted {user_id}"

    @tool
    def transfer(amount: int) -> str:
        """Transfer money."""
        return f"sent {amount}"

    model = script(
        {"match": "delete", "turns": [{"tool_calls": [{"name": "delete_user", "arguments": {"user_id": "u1"}}]},
                                      {"content": "{results}"}]},
        {"match": r"\$(\d+)", "turns": [{"tool_calls": [{"name": "transfer", "arguments": {"amount": "{num:1}"}}]},
                                          {"content": "{results}"}]},
    )
    rules = [ApprovalRule(tools=["delete_user"], policy=ApprovalPolicy(approvers=["admin"])),
             ApprovalRule(tools=["transfer"], when=lambda args: args["amount"] > 1000)]
    agent = make_agent(model, [delete_user, transfer], approval_rules=rules)
    async with running_worker():
        deletion = await agent.arun("delete u1")
        assert deletion.is_paused and deletion.requirements[0].approvers == ["admin"]
        assert deletion.requirements[0].approval_type == "required"
        assert (await agent.arun("transfer $50")).content == "sent 50"
        large = await agent.arun("transfer $5000")
        assert large.is_paused and large.requirements[0].tool_execution.arguments == {"amount": 5000}
