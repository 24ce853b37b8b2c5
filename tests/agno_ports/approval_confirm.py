"""An approval-gated tool: the pause writes a pending approval record; confirming runs the tool.

Straight after the pause the record is listed as pending. The script confirms the call, continues
the run, then marks the record approved with ``update_approval``, and checks nothing is left pending.
"""

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
def rotate_api_key(service: str) -> str:
    """Revoke a service's API key and issue a new one.

    Args:
        service (str): The service whose key is rotated.
    """
    record(f"rotate_api_key {service}")
    return f"The key of {service} was rotated"


db = PostgresDb(db_url=os.getenv("DATABASE_URL", "postgresql+psycopg://ai:ai@localhost:5532/ai"),
                approvals_table="approvals")
agent = Agent(
    name="Key Agent",
    model=OpenAIResponses(id="gpt-5-mini"),
    tools=[rotate_api_key],
    markdown=True,
    db=db,
)

if __name__ == "__main__":
    print("--- Step 1: run (expects a pause) ---")
    run_response = agent.run("Rotate the API key of the billing service")
    print(f"Run status: {run_response.status}")
    assert run_response.is_paused, f"Expected paused, got {run_response.status}"

    print("--- Step 2: pending approvals ---")
    approvals_list, total = db.get_approvals(status="pending")
    print(f"Pending approvals: {total}")
    assert total >= 1, f"Expected at least 1 pending approval, got {total}"
    approval_record = approvals_list[0]
    print(f"  id={approval_record['id']} run_id={approval_record['run_id']} status={approval_record['status']} "
          f"source_type={approval_record['source_type']} context={approval_record.get('context')}")
    assert approval_record["run_id"] == run_response.run_id
    assert approval_record["status"] == "pending"
    assert approval_record["source_type"] == "agent", approval_record["source_type"]
    required, required_total = db.get_approvals(status="pending", approval_type="required")
    assert required_total == 1 and required[0]["id"] == approval_record["id"], required

    print("--- Step 3: confirm and continue ---")
    for requirement in run_response.active_requirements:
        if requirement.needs_confirmation:
            print(f"  Confirming {requirement.tool_execution.tool_name}({requirement.tool_execution.tool_args})")
            requirement.confirm()
    run_response = agent.continue_run(run_id=run_response.run_id, requirements=run_response.requirements)
    print(f"Run status: {run_response.status}")
    assert not run_response.is_paused, "Expected the run to complete"
    print("Content:", run_response.content)

    print("--- Step 4: resolve the approval record ---")
    resolved = db.update_approval(
        approval_record["id"],
        expected_status="pending",
        status="approved",
        resolved_by="ops_lead",
        resolved_at=int(time.time()),
    )
    assert resolved is not None, "the record was not resolved"
    print(f"  status={resolved['status']} resolved_by={resolved['resolved_by']}")
    assert resolved["status"] == "approved"

    count = db.get_pending_approval_count()
    print(f"Pending approvals now: {count}")
    assert count == 0, f"Expected 0 pending approvals, got {count}"
    print("--- All checks passed ---")
