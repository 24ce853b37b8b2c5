"""Agno's sessions on hitl: a sticky ``session_id``, the history of earlier runs, the session's state.

Kept in the agent's PostgreSQL (``hitl.store.sessions``) by the caller's process: a run's input when
it starts, its answer when a call sees it complete. ``add_history_to_context`` puts the last
``num_history_runs`` completed runs of the session (3 by default, as Agno) before the message.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import TYPE_CHECKING, Any

from hitl import limits
from hitl._core import registry
from hitl.run import RunStatus
from hitl.store import sessions as store

if TYPE_CHECKING:
    from hitl.agent import Agent
    from hitl.run import RunOutput

log = logging.getLogger("hitl")


def keeps_sessions(agent: Agent) -> bool:
    return agent.db is not None and (agent.add_history_to_context or agent.session_state is not None)


async def history(agent: Agent, *, run_id: str, session_id: str | None, message: str) -> list[dict[str, Any]]:
    """Record the run as started in its session; the earlier runs' messages to put before it."""
    db = agent.db
    if db is None or session_id is None or not keeps_sessions(agent):
        return []
    await asyncio.to_thread(store.run_started, db, run_id=run_id, session_id=session_id, agent_name=agent.name,
                            message=message)
    if not agent.add_history_to_context:
        return []
    messages = await asyncio.to_thread(store.history, db, session_id=session_id, agent_name=agent.name,
                                       runs=agent.num_history_runs or 3, before_run=run_id)
    if agent.num_history_messages is not None:
        messages = messages[-agent.num_history_messages:] if agent.num_history_messages else []
    while messages and limits.json_bytes(messages) > limits.MAX_MESSAGE_BYTES:
        messages = messages[2:]  # the oldest run first: the history stays within one message's limit
    return messages


async def completed(agent: Agent, output: RunOutput) -> None:
    """A call saw the run complete: its answer joins the session's history."""
    if agent.db is None or not keeps_sessions(agent):
        return
    await asyncio.to_thread(store.run_completed, agent.db, run_id=output.run_id, content=output.content)


async def seen(output: RunOutput) -> None:
    """:func:`completed`, for callers that hold a run but not its agent (the decision service): the agent of
    this process by the run's name, when it keeps sessions."""

    agent = registry.find(output.agent_name) if output.status == RunStatus.completed and output.agent_name else None
    if agent is not None:
        await completed(agent, output)


def state(agent: Agent, session_id: str | None) -> dict[str, Any]:
    """The session's state: what its tools stored, over the agent's ``session_state`` defaults."""
    base = copy.deepcopy(agent.session_state or {})  # each session its own: a tool's change never reaches the defaults
    if agent.db is None or session_id is None:
        return base
    stored = store.get_state(agent.db, session_id=session_id, agent_name=agent.name)
    return {**base, **(stored or {})}


def save_state(agent: Agent, session_id: str, value: dict[str, Any], before: dict[str, Any] | None = None) -> None:
    """Keep the session's state: with ``before`` (what a tool was given), only the keys the tool changed."""
    if agent.db is None:
        return
    if before is None:
        store.put_state(agent.db, session_id=session_id, agent_name=agent.name, state=value)
        return
    changed = {k: v for k, v in value.items() if k not in before or before[k] != v}
    removed = [k for k in before if k not in value]
    if changed or removed:
        store.merge_state(agent.db, session_id=session_id, agent_name=agent.name, changed=changed, removed=removed)
