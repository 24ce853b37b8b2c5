"""Run the reference's Quick Start, then its team example, end to end: ``python starter.py``.

Needs Temporal (``TEMPORAL_ADDRESS``), PostgreSQL (``DATABASE_URL``) and a worker serving
``examples.quickstart`` and ``examples.team_trading``; ``python dev.py demo`` starts all of
them and then this.
"""

from __future__ import annotations

import sys
import time

from hitl.errors import HitlError
from hitl.run import RunOutput, RunStatus


def main() -> int:
    from examples import quickstart, team_trading

    try:
        response = quickstart.main()
        if not finished(response):
            return 1
        print_audit(quickstart.db, {"run_id": response.run_id})
        print("\n--- Team approvals ---")
        response = team_trading.main()
        if not finished(response):
            return 1
        print_audit(team_trading.db, {"team_run_id": response.run_id})
    except HitlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def finished(response: RunOutput) -> bool:
    """A run that did not complete is said so, and the demo fails (a worker lacking the agent, a model error...)."""
    if response.status == RunStatus.completed:
        return True
    why = response.error or response.waiting_for_worker or response.content or ""
    print(f"error: run {response.run_id} ended {response.status}: {why}", file=sys.stderr)
    return False


def print_audit(db, filters: dict[str, str]) -> None:
    """The run's approval records, as the reference's "Approval Database" section reads them."""
    for _ in range(100):  # the mirror runs beside the run: give it a moment to catch up
        records, _ = db.get_approvals(filters=filters)
        if records and all(r["status"] != "pending" for r in records):
            break
        time.sleep(0.05)
    for record in records:
        print(f"Audit: approval {record['id']} {record['status']} by {record['resolved_by'] or '(unnamed)'}; "
              f"tool {record['context']['tool_name']} {record['context']['arguments']}; "
              f"events {[e['kind'] for e in db.get_approval_events(record['id'])]}")


if __name__ == "__main__":
    sys.exit(main())
