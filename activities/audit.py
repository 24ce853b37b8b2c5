"""Mirroring approval events into PostgreSQL."""

from __future__ import annotations

import time

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
    # Mirror lag: from the event in the workflow (its time is from history) to its row in PostgreSQL.
    lag = activity.metric_meter().create_histogram_float(
        "hitl_mirror_lag_seconds", "From an approval event in the run to its row in PostgreSQL", "s")
    written = time.time()
    for event in request.events:
        lag.record(max(0.0, written - event.at), {"agent": request.agent_name})
    if quarantined:
        activity.logger.error("audit: %d event(s) refused by PostgreSQL were quarantined in %s_quarantine: %s",
                              len(quarantined), db.approvals_table, ", ".join(quarantined))
        activity.metric_meter().create_counter(
            "hitl_audit_quarantined_events", "Approval events PostgreSQL refused, kept in the quarantine table",
        ).add(len(quarantined), {"agent": request.agent_name})
    return quarantined
