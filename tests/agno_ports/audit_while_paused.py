"""Audit approvals are written once the call is decided, not while the run waits: with a tool run by
the caller and with a tool that asks for input, nothing is listed or counted as pending at the
pause, and after the answer there is one approved audit record."""

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
@tool(external_execution=True)
def scan_ports(host: str) -> str:
    """Scan a host for open ports.

    Args:
        host (str): The host.
    """
    return f"{host}: 22 and 443 open"


@approval(type="audit")
@tool(requires_user_input=True, user_input_fields=["iban"])
def pay_supplier(amount: float, iban: str) -> str:
    """Pay a supplier.

    Args:
        amount (float): How much.
        iban (str): The supplier's account.
    """
    record(f"pay_supplier {amount} {iban}")
    return f"Paid {amount} to {iban}"


if __name__ == "__main__":
    db = PostgresDb(db_url=os.getenv("DATABASE_URL", "postgresql+psycopg://ai:ai@localhost:5532/ai"),
                    approvals_table="approvals")
    agent = Agent(
        name="Audit Agent",
        model=OpenAIResponses(id="gpt-5-mini"),
        tools=[scan_ports, pay_supplier],
        markdown=True,
        db=db,
    )

    print("=== Scan (run by the caller) ===")
    run = agent.run("Scan the gateway host")
    assert run.is_paused, f"Expected paused, got {run.status}"
    early, total = db.get_approvals()
    print(f"Records while paused: {total}")
    assert total == 0, f"Expected 0 approvals before resolution, got {early}"
    assert db.get_pending_approval_count() == 0
    for req in run.active_requirements:
        if req.needs_external_execution:
            req.set_external_execution_result(scan_ports.entrypoint(**req.tool_execution.tool_args))
    run = agent.continue_run(run_id=run.run_id, requirements=run.requirements)
    assert not run.is_paused, run.status
    logged, logged_total = db.get_approvals(approval_type="audit")
    print(f"Audit records: {logged_total}, source_type={logged[0]['source_type'] if logged else None}")
    assert logged_total == 1 and logged[0]["status"] == "approved" and logged[0]["approval_type"] == "audit", logged

    print("=== Payment (asks for input) ===")
    run = agent.run("Pay the supplier 310")
    assert run.is_paused, f"Expected paused, got {run.status}"
    _, audit_total = db.get_approvals(approval_type="audit")
    print(f"Audit records while paused: {audit_total}")
    assert audit_total == 1, f"Expected still 1 audit record, got {audit_total}"
    for req in run.active_requirements:
        if req.needs_user_input:
            req.provide_user_input({"iban": "DE02 1203 0000 0000 2020 51"})
    run = agent.continue_run(run_id=run.run_id, requirements=run.requirements)
    assert not run.is_paused, run.status
    logged, logged_total = db.get_approvals(approval_type="audit")
    assert logged_total == 2 and all(a["status"] == "approved" for a in logged), logged
    assert db.get_pending_approval_count() == 0
    print("--- All checks passed ---")
