"""Agno's approval record, made from hitl's row: the keys Agno code reads, computed from what is stored.

hitl keeps one row per requirement (``<run_id>/<requirement_id>``); Agno keeps one per pause with
``source_type``, ``source_name``, ``pause_type``, ``tool_name``, ``tool_args``, ``agent_id``, ``team_id``,
``updated_at``, ``run_status`` and a ``context`` of ``tool_names`` and ``source_name``. Every record
dict ``PostgresDb`` returns carries both (:func:`shape`): hitl's columns as they were, Agno's keys beside them;
the context every reader is given has Agno's ``tool_names`` and ``source_name`` (:func:`context`).

An agent is named, not numbered, in hitl: ``agent_id`` is the agent's name and ``team_id`` the team's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hitl.run import RunStatus

if TYPE_CHECKING:
    from hitl._wire import ApprovalEvent
    from hitl.store.records import StoredApproval

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


def team_of(stored: str | None, agent_name: str, team_run_id: str | None) -> str | None:
    """The team a record was made for: the one its row names, else, for a member's record, the one this
    process defines with that member (None when it cannot tell: a name for display never fails a read)."""
    if stored is not None or not team_run_id:
        return stored
    try:
        return team_name(agent_name, team_run_id)
    except Exception:  # noqa: BLE001
        return None


def source_name(team: str | None, agent_name: str, team_run_id: str | None) -> str | None:
    """Agno's ``source_name``: the team's name for a team's approvals and its members', else the agent's."""
    return team if team is not None or team_run_id else agent_name


def context(stored: dict[str, Any], source: str | None) -> dict[str, Any]:
    """A record's context as readers are given it: the mirror's keys, with Agno's ``tool_names`` and ``source_name``."""
    tool = stored.get("tool_name")
    return {**stored, "tool_names": [tool] if tool else [], "source_name": source}


def shape(record: StoredApproval) -> dict[str, Any]:
    """Agno's approval record: hitl's keys as they were (in the row's column order), Agno's beside them."""
    hitl = record.model_dump(exclude={"team_name", "updated_at", "deleted_at"})
    hitl["team_run_id"] = hitl.pop("team_run_id")  # after resolution, where the row has it
    is_team = record.team_name is not None or bool(record.team_run_id)
    tool = record.context.get("tool_name")
    deadline = record.context.get("deadline")
    return {
        **hitl,
        "updated_at": record.updated_at,
        "deleted_at": record.deleted_at,
        "source_type": "team" if is_team else "agent",
        "source_name": source_name(record.team_name, record.agent_name, record.team_run_id),
        "pause_type": record.requirement_kind,
        "tool_name": tool,
        "tool_args": record.context.get("arguments"),
        "agent_id": record.agent_name,
        "team_id": record.team_name,
        "workflow_id": None,
        "schedule_id": None,
        "schedule_run_id": None,
        "expires_at": int(deadline) if isinstance(deadline, (int, float)) and math.isfinite(deadline) else None,
        "resolution_data": hitl["resolution"],
        "run_status": run_status(record.status),
    }
