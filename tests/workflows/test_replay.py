"""Recorded histories still replay: a workflow change that would break running runs fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from hitl.workflows import AgentRunWorkflow
from tests import replay_agents  # noqa: F401 - registers the agents the histories ran

HISTORIES = sorted(p for p in (Path(__file__).parents[1] / "histories").glob("*-*.json"))
# The workflow id each was recorded under, where it matters (a team names its members' runs after it).
IDS = json.loads((Path(__file__).parents[1] / "histories" / "workflow_ids.json").read_text())


def test_there_are_histories_to_replay():
    """The replay test is only worth something with histories of every shape."""
    names = {p.name.rsplit("-", 1)[0] for p in HISTORIES}
    assert {"batch_update", "steps_signals_continue_as_new", "model_error", "audited_signals",
            "policy_refused_then_expired", "escalation_steps_expired", "team_member_confirmed",
            "team_member_run", "batch_signals_one_by_one", "team_outcome_confirmed", "team_outcome_member_run",
            "team_in_order_confirmed", "team_in_order_member_run", "team_decision_confirmed",
            "team_decision_member_run"} <= names
    # Recorded after decided tools became remote activities and verdicts were recorded (hitl-decided-tools-remote,
    # hitl-recorded-verdicts): every shape again.
    assert {f"exactly_once_{n}" for n in ("batch_update", "steps_signals_continue_as_new", "model_error", "audited_signals",
            "policy_refused_then_expired", "escalation_steps_expired", "team_decision_confirmed",
            "team_decision_member_run", "batch_signals_one_by_one")} <= names
    # Strict mode (hitl-change-verdicts): refused and signed decisions and changes.
    assert "strict_signed" in names
    # Moved to the current version at its pause (hitl-upgrade-on-request): the continue-as-new and the run after it.
    assert "upgraded_at_pause" in names
    # A team that answered before its member closed, then waited for it (hitl-team-closes-after-its-members),
    # its member decided by team_continue and the report handed on by member_report.
    assert {"teamclose_team_decision_confirmed", "teamclose_team_decision_member_run"} <= names
    # An old run that got the upgrade signal (older code ignored it): it must not wake the pause on replay.
    assert "old_code_ignored_upgrade" in names


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path):
    """Replaying a recorded run with today's workflow code raises no non-determinism error."""
    history = WorkflowHistory.from_json(IDS.get(path.name, "run-replay"), json.loads(path.read_text()))
    replayer = Replayer(workflows=[AgentRunWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
