"""The life of approval records: two paused runs, listed, filtered, decided in the database, then
the runs continued with the same decisions, and the decided records deleted."""

import os
import time

from hitl.agent import Agent
from hitl.approval import approval
from hitl.db.postgres import PostgresDb
from hitl.models.openai import OpenAIResponses
from hitl.tools import tool


def record(line: str) -> None:
    path = os.getenv("PORT_TOOL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@approval
@tool(requires_confirmation=True)
def revoke_access(employee_id: str) -> str:
    """Revoke every access badge and account of an employee.

    Args:
        employee_id (str): The employee.
    """
    record(f"revoke_access {employee_id}")
    return f"All access of {employee_id} revoked"


@approval
@tool(requires_confirmation=True)
def purge_cache(region: str, size_gb: int) -> str:
    """Purge the content cache of a region.

    Args:
        region (str): The region.
        size_gb (int): How much to purge.
    """
    record(f"purge_cache {region} {size_gb}")
    return f"Purged {size_gb} GB in {region}"


db_url = os.getenv("DATABASE_URL", "postgresql+psycopg://ai:ai@localhost:5532/ai")
db = PostgresDb(db_url=db_url, approvals_table="approvals")
agent = Agent(
    name="Ops Agent",
    model=OpenAIResponses(id="gpt-5-mini"),
    tools=[revoke_access, purge_cache],
    markdown=True,
    db=db,
)

if __name__ == "__main__":
    # Made again, as after cleaning up a previous run's files
    db = PostgresDb(db_url=db_url, approvals_table="approvals")
    agent = Agent(
        name="Ops Agent",
        model=OpenAIResponses(id="gpt-5-mini"),
        tools=[revoke_access, purge_cache],
        markdown=True,
        db=db,
    )

    print("=== Run 1 ===")
    run1 = agent.run("Revoke the access of employee E-0042")
    assert run1.is_paused, f"Expected pause, got {run1.status}"
    print(f"Paused: {run1.run_id[:8]}")

    print("=== Run 2 ===")
    run2 = agent.run("Purge 40 GB of cache in eu-west")
    assert run2.is_paused, f"Expected pause, got {run2.status}"
    print(f"Paused: {run2.run_id[:8]}")

    pending, total = db.get_approvals(status="pending")
    print(f"Pending: {total}")
    assert total == 2, total
    for a in pending:
        print(f"  [{a['id'][:8]}] run={a['run_id'][:8]} context={a.get('context')}")
    assert db.get_pending_approval_count() == 2

    by_run, by_run_total = db.get_approvals(run_id=run1.run_id)
    assert by_run_total == 1, by_run_total
    first = db.get_approval(by_run[0]["id"])
    assert first is not None and first["status"] == "pending" and first["source_type"] == "agent", first

    resolved = db.update_approval(first["id"], expected_status="pending", status="approved",
                                  resolved_by="security@example.com", resolved_at=int(time.time()))
    assert resolved is not None and resolved["status"] == "approved", resolved
    print(f"Approved by {resolved['resolved_by']}")

    again = db.update_approval(first["id"], expected_status="pending", status="rejected", resolved_by="intruder")
    assert again is None, f"a second decision went through: {again}"
    print("Second decision refused")

    left, _ = db.get_approvals(status="pending")
    assert len(left) == 1 and left[0]["run_id"] == run2.run_id, left
    rejected = db.update_approval(left[0]["id"], expected_status="pending", status="rejected",
                                  resolved_by="security@example.com", resolved_at=int(time.time()))
    assert rejected is not None and rejected["status"] == "rejected", rejected

    assert db.get_pending_approval_count() == 0
    everything, everything_total = db.get_approvals()
    assert everything_total == 2, everything_total

    print("=== Continue run 1 (approved) ===")
    for req in run1.active_requirements:
        if req.needs_confirmation:
            req.confirm()
    result1 = agent.continue_run(run_id=run1.run_id, requirements=run1.requirements)
    print(f"Result 1: {result1.content}")
    assert not result1.is_paused, result1.status
    assert "All access of E-0042 revoked" in result1.content, result1.content

    print("=== Continue run 2 (rejected) ===")
    for req in run2.active_requirements:
        if req.needs_confirmation:
            req.reject("Rejected by security: purge during business hours")
    result2 = agent.continue_run(run_id=run2.run_id, requirements=run2.requirements)
    print(f"Result 2: {result2.content}")
    assert not result2.is_paused, result2.status
    assert "Purged" not in result2.content, result2.content

    for a in everything:
        assert db.delete_approval(a["id"]), f"could not delete {a['id']}"
        print(f"Deleted {a['id'][:8]}")
    _, final_total = db.get_approvals()
    assert final_total == 0, final_total
    print("--- All checks passed ---")
