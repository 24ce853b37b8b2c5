"""Mirroring approval events into PostgreSQL."""

from __future__ import annotations

from temporalio import activity

from hitl._wire import AUDIT, MirrorRequest
from hitl.activities._agents import agent_named


@activity.defn(name=AUDIT)
async def mirror_approvals(request: MirrorRequest) -> list[str]:
    """Write a batch of approval events; retried by Temporal until PostgreSQL takes them.

    Returns the events PostgreSQL refused for their content, quarantined (see ``hitl.db``):
    logged, counted (``hitl_audit_quarantined_events``) and kept, never retried forever.
    """
    db = agent_named(request.agent_name).db
    if db is None:
        return []
    quarantined = await db.write_events(request.events)
    if quarantined:
        activity.logger.error("audit: %d event(s) refused by PostgreSQL were quarantined in %s_quarantine: %s",
                              len(quarantined), db.approvals_table, ", ".join(quarantined))
        activity.metric_meter().create_counter(
            "hitl_audit_quarantined_events", "Approval events PostgreSQL refused, kept in the quarantine table",
        ).add(len(quarantined), {"agent": request.agent_name})
    return quarantined
