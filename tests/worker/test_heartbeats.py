"""A remote tool heartbeats: its dead worker is noticed within 10 s, and a healthy tool outlives its heartbeat timeout."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, TimeoutType

from hitl import RunStatus, tool
from hitl._wire import RUN_TOOL
from hitl.workflows.calls import HEARTBEAT
from tests import heartbeat_agents
from tests.core.test_durability import _wait_for, env, workers  # noqa: F401 - env, workers: fixtures

PROMISED = 10.0
"""README, "What is guaranteed": a worker that dies mid-tool is "noticed within 10 s, by heartbeat"."""
LATENESS = 1.5
"""What the server may add after the heartbeat timeout: its timer queue fires within a second or so."""


@pytest.fixture
def heartbeat_workers(workers: Any, model_server: Any) -> Any:
    """Start worker subprocesses serving tests.heartbeat_agents; all are killed at the end."""
    for name, script in heartbeat_agents.SCRIPTS.items():
        model_server.add_script(name, script)
    return lambda: workers("tests.heartbeat_agents")


async def tool_activity(client: Any, run_id: str) -> dict[str, Any]:
    """The run's one tool activity, from its history: when it was scheduled (with which timeouts), started, ended."""
    found: dict[str, Any] = {"started": [], "timed_out": [], "completed": []}
    async for e in client.get_workflow_handle(run_id).fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED \
                and e.activity_task_scheduled_event_attributes.activity_type.name == RUN_TOOL:
            assert "scheduled" not in found, "more than one tool activity"
            found["scheduled"] = e
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            found["started"].append(e)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            found["timed_out"].append(e)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            found["completed"].append(e)
    return found


def seconds(duration: Any) -> float:
    return duration.ToTimedelta().total_seconds()


async def test_a_dead_workers_tool_is_noticed_within_the_10_s_heartbeat(heartbeat_workers, tool_log, client):
    """SIGKILL the worker mid-tool: Temporal times the tool out by heartbeat within 10 s of the death, not at its
    two-minute timeout, and the run pauses on an uncertain outcome."""
    agent = heartbeat_agents.long_charge_agent
    first = heartbeat_workers()
    paused = await agent.arun("charge 7")
    paused.active_requirements[0].confirm(resolved_by="ops")
    pending = asyncio.ensure_future(agent.acontinue_run(paused.run_id, paused.requirements))
    await _wait_for(tool_log, "long_charge start 7")
    await asyncio.sleep(HEARTBEAT.total_seconds() / 3 + 0.5)  # past its first heartbeat: the clock runs from the last
    assert tool_log.read_text().splitlines() == ["long_charge start 7"]  # still running when killed
    first.send_signal(signal.SIGKILL)
    killed = time.time()
    first.wait()
    heartbeat_workers()  # to run the workflow task the timeout makes
    again = await asyncio.wait_for(pending, 60)
    assert again.is_paused and again.pauses == 2, again
    [req] = again.active_requirements
    assert req.uncertain_outcome and req.needs_confirmation
    activity = await tool_activity(client, paused.run_id)
    scheduled = activity["scheduled"].activity_task_scheduled_event_attributes
    assert seconds(scheduled.heartbeat_timeout) == PROMISED and seconds(scheduled.start_to_close_timeout) == 120
    [timed_out] = activity["timed_out"]
    failure = timed_out.activity_task_timed_out_event_attributes.failure
    assert failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT, failure
    noticed = timed_out.event_time.ToDatetime().timestamp() - killed
    assert 0 < noticed <= PROMISED + LATENESS, f"the dead worker was noticed {noticed:.1f} s after it died"
    assert activity["completed"] == []
    assert tool_log.read_text().splitlines() == ["long_charge start 7"]  # never run again unseen
    req.reject(reason="checked: it did not go through", resolved_by="ops")
    done = await agent.acontinue_run(again.run_id, again.requirements)
    assert done.status == RunStatus.completed


STEADY: list[str] = []
LONGER = HEARTBEAT.total_seconds() + 3


@tool(requires_confirmation=True, idempotent=False, timeout=timedelta(minutes=1))
def steady_write(key: str) -> str:
    """Write slowly, in a thread (a sync tool), for longer than the heartbeat timeout."""
    STEADY.append(f"start {key}")
    time.sleep(LONGER)
    STEADY.append(f"end {key}")
    return f"wrote {key}"


async def test_a_healthy_tool_outlives_its_heartbeat_timeout(make_agent, script, running_worker, client):
    """A sync tool running 13 s on a live worker, past its 10 s heartbeat timeout, keeps heartbeating: it is never
    timed out or run twice, no uncertain outcome is raised, and its result reaches the model."""
    STEADY.clear()
    model = script({"turns": [{"tool_calls": [{"name": "steady_write", "arguments": {"key": "k"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [steady_write])
    async with running_worker():
        paused = await agent.arun("write k")
        paused.active_requirements[0].confirm(resolved_by="ops")
        done = await asyncio.wait_for(agent.acontinue_run(paused.run_id, paused.requirements), 60)
    assert done.status == RunStatus.completed and done.content == "wrote k" and done.pauses == 1, done
    assert STEADY == ["start k", "end k"]
    activity = await tool_activity(client, paused.run_id)
    scheduled = activity["scheduled"].activity_task_scheduled_event_attributes
    assert seconds(scheduled.heartbeat_timeout) == PROMISED
    [started] = activity["started"]
    assert started.activity_task_started_event_attributes.attempt == 1
    assert activity["timed_out"] == []
    [completed] = activity["completed"]
    ran = (completed.event_time.ToDatetime() - started.event_time.ToDatetime()).total_seconds()
    assert ran > PROMISED + 1, f"the tool ran {ran:.1f} s: not past its heartbeat timeout"
