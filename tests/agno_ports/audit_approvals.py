"""Audit approvals: the run waits for a yes or no as usual, and the decision is on an audit record
once it is made. One call confirmed, one rejected. (That nothing is recorded while the run waits is
audit_while_paused.py's matter.)"""

import os

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


@approval(type="audit")
@tool(requires_confirmation=True)
def export_customer_list(segment: str) -> str:
    """Export the customers of a segment to a spreadsheet.

    Args:
        segment (str): Which customers.
    """
    record(f"export_customer_list {segment}")
    return f"Exported the {segment} customers"


if __name__ == "__main__":
    db = PostgresDb(db_url=os.getenv("DATABASE_URL", "postgresql+psycopg://ai:ai@localhost:5532/ai"),
                    approvals_table="approvals")
    agent = Agent(
        name="Export Agent",
        model=OpenAIResponses(id="gpt-5-mini"),
        tools=[export_customer_list],
        markdown=True,
        db=db,
    )

    print("=== Run 1: confirmed ===")
    run = agent.run("Export the wholesale customers")
    assert run.is_paused, f"Expected paused, got {run.status}"
    for req in run.active_requirements:
        if req.needs_confirmation:
            req.confirm()
    run = agent.continue_run(run_id=run.run_id, requirements=run.requirements)
    assert not run.is_paused, run.status
    approved, approved_total = db.get_approvals(approval_type="audit", status="approved")
    print(f"Approved audit records: {approved_total}")
    assert approved_total >= 1, approved_total
    assert approved[0]["status"] == "approved" and approved[0]["approval_type"] == "audit", approved[0]

    print("=== Run 2: rejected ===")
    run = agent.run("Export the retail customers")
    assert run.is_paused, f"Expected paused, got {run.status}"
    for req in run.active_requirements:
        if req.needs_confirmation:
            req.reject("Rejected by compliance: retail data stays in house")
    run = agent.continue_run(run_id=run.run_id, requirements=run.requirements)
    assert not run.is_paused, run.status
    rejected, rejected_total = db.get_approvals(approval_type="audit", status="rejected")
    print(f"Rejected audit records: {rejected_total}")
    assert rejected_total >= 1, rejected_total
    assert rejected[0]["status"] == "rejected" and rejected[0]["approval_type"] == "audit", rejected[0]

    _, all_total = db.get_approvals(approval_type="audit")
    print(f"Audit records: {all_total}")
    assert all_total == 2, all_total
    assert db.get_pending_approval_count() == 0
    print("--- All checks passed ---")
