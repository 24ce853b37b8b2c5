"""An admin decides the approval in the database; the run is then continued by id alone, and a
post-hook reads who decided from ``run_output.metadata["approval"]``."""

import os
import time

from hitl.agent import Agent
from hitl.approval import approval
from hitl.db.postgres import PostgresDb
from hitl.models.openai import OpenAIResponses
from hitl.run.agent import RunOutput
from hitl.tools import tool


def record(line: str) -> None:
    path = os.getenv("PORT_TOOL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@approval
@tool(requires_confirmation=True)
def close_account(account_id: str) -> str:
    """Close a customer account for good.

    Args:
        account_id (str): The account.
    """
    record(f"close_account {account_id}")
    return f"Account {account_id} is closed"


seen = []


def log_decider(run_output: RunOutput) -> None:
    """Post-hook: who decided the call, and when."""
    if not run_output.metadata:
        return
    decided = run_output.metadata.get("approval")
    if decided is None:
        return
    seen.append(decided)
    print("[hook] approval", decided["id"], decided["status"], decided.get("resolved_by"), decided.get("resolved_at"))


if __name__ == "__main__":
    db = PostgresDb(db_url=os.getenv("DATABASE_URL", "postgresql+psycopg://ai:ai@localhost:5532/ai"),
                    approvals_table="approvals")
    agent = Agent(
        name="Accounts Agent",
        model=OpenAIResponses(id="gpt-5-mini"),
        tools=[close_account],
        post_hooks=[log_decider],
        db=db,
    )

    run = agent.run("Close the account ACC-778")
    assert run.is_paused, f"Expected paused, got {run.status}"
    print(f"Paused: {run.run_id}")

    pending, _ = db.get_approvals(run_id=run.run_id, status="pending")
    assert len(pending) == 1, pending
    resolved = db.update_approval(pending[0]["id"], expected_status="pending", status="approved",
                                  resolved_by="supervisor@example.com", resolved_at=int(time.time()))
    assert resolved is not None
    print(f"Resolved by: {resolved['resolved_by']}")

    run = agent.continue_run(run_id=run.run_id)
    assert not run.is_paused, f"Expected the run to complete, got {run.status}"
    print("Content:", run.content)
    assert "Account ACC-778 is closed" in run.content, run.content
    assert run.metadata is not None and "approval" in run.metadata, run.metadata
    assert run.metadata["approval"]["resolved_by"] == "supervisor@example.com", run.metadata["approval"]
    assert run.metadata["approval"]["status"] == "approved", run.metadata["approval"]
    assert len(seen) == 1 and seen[0]["resolved_by"] == "supervisor@example.com", seen
    print("--- All checks passed ---")
