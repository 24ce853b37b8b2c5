"""Mirroring approval events into PostgreSQL."""

from __future__ import annotations

from temporalio import activity

from activities._agents import agent_named
from hitl._wire import AUDIT, MirrorRequest


@activity.defn(name=AUDIT)
async def mirror_approvals(request: MirrorRequest) -> None:
    """Write a batch of approval events; retried by Temporal until PostgreSQL takes them."""
    db = agent_named(request.agent_name).db
    if db is not None:
        await db.write_events(request.events)
