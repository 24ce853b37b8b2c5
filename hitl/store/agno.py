"""Agno's approval record, made from hitl's row: the keys Agno code reads, computed from what is stored.

hitl keeps one row per requirement (``<run_id>/<requirement_id>``); Agno keeps one per pause with
``source_type``, ``source_name``, ``pause_type``, ``tool_name``, ``tool_args``, ``agent_id``, ``team_id``,
``updated_at``, ``run_status`` and a ``context`` of ``tool_names`` and ``source_name``. Every record
dict hitl returns carries both: hitl's columns as they were, Agno's keys beside them.

An agent is named, not numbered, in hitl: ``agent_id`` is the agent's name and ``team_id`` the team's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hitl.run import RunStatus

if TYPE_CHECKING:
    from hitl._wire import ApprovalEvent

SOURCE_TYPES = ("agent", "team", "workflow")
"""Agno's ``source_type`` values; hitl has no workflows, so ``workflow`` matches nothing."""


TeamNamer = Callable[[str, "str | None", Any], "str | None"]
_team_namer: TeamNamer | None = None


def name_teams_with(namer: TeamNamer) -> None:
    """How this process names the team an approval was made for (``hitl._core.registry`` gives it: the
    store cannot see the agents a process defines)."""
    global _team_namer
    _team_namer = namer


def team_name(agent_name: str, team_run_id: str | None, db: Any = None) -> str | None:
    """The team an approval was made for, as this process defines its agents; None when it cannot tell
    (no agent defined here)."""
    return _team_namer(agent_name, team_run_id, db) if _team_namer is not None else None


def writer(db: Any) -> Any:
    """The mirror's ``team_of`` for events written into ``db``."""

    def team_of(ev: ApprovalEvent) -> str | None:
        try:
            return team_name(ev.agent_name, ev.team_run_id, db)
        except Exception:  # noqa: BLE001 - a name for display never fails (and retries) a mirror write
            return None

    return team_of


def run_status(status: str) -> str | None:
    """What the record tells of its run: paused while it waits, cancelled with it; otherwise unknown
    here (``Agent.get_run`` asks the run)."""

    return {"pending": RunStatus.paused.value, "cancelled": RunStatus.cancelled.value}.get(status)


def shape(record: dict[str, Any]) -> dict[str, Any]:
    """Add Agno's keys to a record (times already epoch seconds); hitl's keys stay as they are."""
    team = record.pop("team_name", None)
    if team is None and record.get("team_run_id"):
        try:
            team = team_name(record["agent_name"], record["team_run_id"])
        except Exception:  # noqa: BLE001
            team = None
    is_team = team is not None or bool(record.get("team_run_id"))
    source_name = team if is_team else record.get("agent_name")
    context = dict(record.get("context") or {})
    tool = context.get("tool_name")
    context["tool_names"] = [tool] if tool else []
    context["source_name"] = source_name
    deadline = context.get("deadline")
    record.update(
        context=context,
        source_type="team" if is_team else "agent",
        source_name=source_name,
        pause_type=record.get("requirement_kind"),
        tool_name=tool,
        tool_args=context.get("arguments"),
        agent_id=record.get("agent_name"),
        team_id=team,
        workflow_id=None,
        schedule_id=None,
        schedule_run_id=None,
        expires_at=int(deadline) if isinstance(deadline, (int, float)) and math.isfinite(deadline) else None,
        resolution_data=record.get("resolution"),
        run_status=run_status(record.get("status") or ""),
    )
    if record.get("updated_at") is None:  # a row from before migration 009: its last known move
        record["updated_at"] = record.get("resolved_at") or record.get("created_at")
    return record
