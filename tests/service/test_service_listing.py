"""The listing behind ``GET /approvals`` and ``hitl approvals list``: its page, escalation levels and count
come from one round trip, and agree with what they were when each was its own query."""

from __future__ import annotations

import time

from hitl._core import approvals as _approvals
from hitl._wire import ApprovalEvent
from hitl.identity import Principal

READER = Principal(name="auditor", scopes=frozenset({"approvals:read"}))


def event(n: int, seq: int, kind: str, status: str = "pending", payload: dict | None = None) -> ApprovalEvent:
    return ApprovalEvent(approval_id=f"run-{n}/req-1", seq=seq, kind=kind, at=time.time(), payload=payload or {},
                         run_id=f"run-{n}", requirement_id="req-1", agent_name="agent", requirement_kind="confirmation",
                         approval_type="required", status=status, context={"tool_name": "pay"}, arguments_digest="d",
                         created_at=1_800_000_000 + n)


async def test_escalation_levels_ride_with_the_page_and_only_pending_ones_count(db):
    """Each record has the level of its last escalation (0 without one, 0 once decided); the count is exact."""
    await db.write_events([event(1, 1, "requested"), event(1, 2, "escalated", payload={"level": 1}),
                           event(1, 3, "escalated", payload={"level": 2}),
                           event(2, 1, "requested"), event(2, 2, "escalated"),  # an older trail: no level, counted
                           event(3, 1, "requested"),
                           event(4, 1, "requested"), event(4, 2, "escalated", payload={"level": 1}),
                           event(4, 3, "approved", status="approved")])
    records, total, cursor = await _approvals.listing(db, READER, _approvals.ApprovalQuery())
    assert {r.id: r.escalation_level for r in records} == {"run-1/req-1": 2, "run-2/req-1": 1, "run-3/req-1": 0,
                                                                  "run-4/req-1": 0}
    assert total == 4 and not total.estimated and cursor is None
    assert [r.id for r in records] == [f"run-{n}/req-1" for n in (4, 3, 2, 1)]  # newest first


async def test_a_page_past_the_end_still_counts(db):
    """No rows on the page: the count still comes back with it."""
    await db.write_events([event(n, 1, "requested") for n in range(3)])
    records, total, cursor = await _approvals.listing(db, READER, _approvals.ApprovalQuery(page=5, limit=2))
    assert records == [] and total == 3 and cursor is None
    records, total, cursor = await _approvals.listing(db, READER, _approvals.ApprovalQuery(limit=2, status="approved"))
    assert records == [] and total == 0
