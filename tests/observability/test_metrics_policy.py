"""The workers' metrics README "Observability" lists and test_metrics leaves out: reminders, escalations, expiries
and quarantined audit events, scraped from the SDK's Prometheus port."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.worker import Worker

from hitl import RunOutput, RunStatus, tool
from hitl._wire import AUDIT, ApprovalEvent, MirrorRequest
from hitl.activities.audit import mirror_approvals
from hitl.approval import approval
from hitl.policy import escalate, remind
from tests.observability.test_metrics import metered, scrape, sdk_port, until, value  # noqa: F401 - fixtures


@approval(approvers=["alice"], timeout=timedelta(seconds=3),
          escalation=[remind(after=timedelta(seconds=1)), escalate(after=timedelta(seconds=2), to=["bob"])])
@tool(requires_confirmation=True)
def wire(amount: int) -> str:
    """Wire money (reminds at 1 s, escalates at 2 s, expires at 3 s)."""
    return f"wired {amount}"


async def test_a_reminder_an_escalation_and_an_expiry_are_counted_once_each(metered, make_agent, script, running_worker,  # noqa: F811
                                                                             client):
    """A pause left undecided reminds, escalates and expires: hitl_reminders, hitl_escalations and hitl_expiries
    each count 1, labelled with the agent and the tool, and no more once the run has ended."""
    url = f"http://127.0.0.1:{metered}/metrics"
    model = script({"turns": [{"tool_calls": [{"name": "wire", "arguments": {"amount": 9}}]}, {"content": "{results}"}]})
    agent = make_agent(model, [wire])
    async with running_worker():
        paused = await agent.arun("wire 9")
        assert paused.is_paused
        for name in ("hitl_reminders", "hitl_escalations", "hitl_expiries"):
            await until(url, name, 1, agent=agent.name, tool="wire")
        done = RunOutput.model_validate(await asyncio.wait_for(client.get_workflow_handle(paused.run_id).result(), 30))
    assert done.status == RunStatus.completed and done.requirements[0].resolution == "expired"
    text = await scrape(url)
    for name in ("hitl_reminders", "hitl_escalations", "hitl_expiries"):
        assert value(text, name, agent=agent.name, tool="wire") == 1, name
        assert value(text, name, agent=agent.name) == 1, name  # nothing under another label
    assert value(text, "hitl_approvals_requested", agent=agent.name, tool="wire") == 1
    assert value(text, "hitl_decision_seconds_count", agent=agent.name, tool="wire", resolution="expired") == 1


@workflow.defn(name="hitl-test-mirror-once", sandboxed=False)
class MirrorOnce:
    """Runs the audit mirror activity once on the events given: the activity a run's outbox runs."""

    @workflow.run
    async def run(self, request: MirrorRequest) -> list[str]:
        return await workflow.execute_activity(AUDIT, request, result_type=list[str],
                                               start_to_close_timeout=timedelta(seconds=30))


def event(seq: int, kind: str, status: str, **extra) -> ApprovalEvent:
    return ApprovalEvent(approval_id="run-m/req-1", seq=seq, kind=kind, at=1_796_000_000 + seq, run_id="run-m",
                         requirement_id="req-1", agent_name="a", requirement_kind="confirmation", approval_type="required",
                         status=status, context={"tool_name": "pay", "arguments": {"to": "x"}}, arguments_digest="d",
                         created_at=1_796_000_000, **extra)


async def test_an_event_postgresql_refuses_is_counted_as_quarantined(metered, make_agent, script, db, client):  # noqa: F811
    """The audit mirror activity, on a real worker, writing a batch with one event PostgreSQL refuses (a NUL, as
    histories older than the checks hold): hitl_audit_quarantined_events counts it, labelled with the agent."""
    url = f"http://127.0.0.1:{metered}/metrics"
    agent = make_agent(script({"turns": [{"content": "hi"}]}), [], db=db)  # the agent the activity writes for
    poisoned = event(2, "confirmed", "approved", resolved_by="ops\x00", payload={"note": "a\x00b"})
    request = MirrorRequest(agent_name=agent.name, events=[event(1, "requested", "pending"), poisoned])
    queue = f"tq-mirror-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[MirrorOnce], activities=[mirror_approvals]):
        clean = await client.execute_workflow(MirrorOnce.run, MirrorRequest(agent_name=agent.name, events=[
            event(1, "requested", "pending").model_copy(update={"approval_id": "run-m/req-2", "requirement_id": "req-2"})]),
            id=f"mirror-{uuid.uuid4().hex[:8]}", task_queue=queue)
        assert clean == []  # the control: a clean batch quarantines nothing, and counts nothing
        await until(url, "hitl_mirror_lag_seconds_count", 1, agent=agent.name)
        assert value(await scrape(url), "hitl_audit_quarantined_events", agent=agent.name) == 0
        quarantined = await client.execute_workflow(MirrorOnce.run, request, id=f"mirror-{uuid.uuid4().hex[:8]}",
                                                    task_queue=queue)
        assert quarantined == ["run-m/req-1#2"]
        text = await until(url, "hitl_audit_quarantined_events", 1, agent=agent.name)
    assert value(text, "hitl_audit_quarantined_events", agent=agent.name) == 1
    assert [e["kind"] for e in db.get_approval_events("run-m/req-1")] == ["requested", "confirmed"]
