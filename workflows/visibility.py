"""The run's search attributes, kept current from workflow code.

An upsert is a workflow command, so runs recorded before it existed must replay without one:
``workflow.patched`` marks histories that have it. Runs started without registered attributes
(``RunInput.search_attributes`` false) never upsert: the server would fail the task.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

import hitl.workflows.generation as generation
from hitl._wire import RunInput
from hitl.observability import visibility
from hitl.run import RunRequirement, RunStatus

PATCH = "hitl-search-attributes"
_KEYS = (visibility.STATUS, visibility.PENDING_TOOLS, visibility.NEXT_DEADLINE, visibility.AGENT,
         visibility.TEAM_RUN_ID)


class SearchAttributes:
    def __init__(self, run_input: RunInput) -> None:
        self._enabled = run_input.search_attributes
        self._agent = run_input.agent_name
        self._team_run_id = run_input.team_run_id
        # Continue-as-new carries the attributes over: start from what the server shows.
        shown = workflow.info().typed_search_attributes
        self._shown: dict[str, object] = {k.name: shown.get(k) for k in _KEYS if shown.get(k) is not None}

    def publish(self, status: RunStatus, requirements: Sequence[RunRequirement]) -> None:
        """Upsert what changed since the last call (nothing, most of the time)."""
        if not self._enabled or not generation.patched(PATCH):
            return
        pending = [r for r in requirements if r.resolution is None]
        deadlines = [r.deadline for r in pending if r.deadline is not None]
        wanted: dict[str, object] = {
            visibility.STATUS.name: status.value,
            visibility.PENDING_TOOLS.name: sorted({r.tool_execution.tool_name for r in pending}),
            visibility.NEXT_DEADLINE.name: (
                datetime.fromtimestamp(min(deadlines), tz=UTC) if deadlines else None
            ),
            visibility.AGENT.name: self._agent,
            visibility.TEAM_RUN_ID.name: self._team_run_id,
        }
        updates: list[SearchAttributeUpdate] = []
        for key in _KEYS:
            value = wanted[key.name]
            if self._shown.get(key.name) == value or (value is None and key.name not in self._shown):
                continue
            if value == [] and key.name not in self._shown and generation.current():
                continue  # an empty list reads as unset: a run starting with no pending tools upserts nothing
            # wanted[key.name] is of the key's own type (the dict's values are a union of them all)
            updates.append(key.value_unset() if value is None else key.value_set(value))  # type: ignore[arg-type]
            self._shown[key.name] = value
        if updates:
            workflow.upsert_search_attributes(updates)
