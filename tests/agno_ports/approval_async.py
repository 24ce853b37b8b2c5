"""The approval flow from ``async def main()``: the agent and its database are made again there, the
run is started with ``await agent.arun`` and continued with ``await agent.acontinue_run``."""

import asyncio
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
def refund_order(order_id: str, amount: float) -> str:
    """Refund an order.

    Args:
        order_id (str): The order.
        amount (float): How much to refund.
    """
    record(f"refund_order {order_id} {amount}")
    return f"Refunded {amount} on order {order_id}"


db_url = os.getenv("DATABASE_URL", "postgresql+psycopg://ai:ai@localhost:5532/ai")
db = PostgresDb(db_url=db_url, approvals_table="approvals")
agent = Agent(
    model=OpenAIResponses(id="gpt-5-mini"),
    tools=[refund_order],
    markdown=True,
    db=db,
)


async def main():
    # Made again here, as the module's agent is
    _db = PostgresDb(db_url=db_url, approvals_table="approvals")
    _agent = Agent(
        model=OpenAIResponses(id="gpt-5-mini"),
        tools=[refund_order],
        markdown=True,
        db=_db,
    )

    run_response = await _agent.arun("Refund 19.5 on order ORD-31")
    print(f"Run status: {run_response.status}")
    assert run_response.is_paused, f"Expected paused, got {run_response.status}"

    approvals_list, total = _db.get_approvals(status="pending")
    print(f"Pending approvals: {total}")
    assert total >= 1, total
    approval_record = approvals_list[0]
    print(f"  id={approval_record['id']} status={approval_record['status']}")

    for requirement in run_response.active_requirements:
        if requirement.needs_confirmation:
            print(f"  Confirming {requirement.tool_execution.tool_name}")
            requirement.confirm()
    run_response = await _agent.acontinue_run(run_id=run_response.run_id, requirements=run_response.requirements)
    print(f"Run status: {run_response.status}")
    assert not run_response.is_paused, "Expected the run to complete"
    print("Content:", run_response.content)
    assert "Refunded 19.5 on order ORD-31" in run_response.content, run_response.content

    resolved = _db.update_approval(approval_record["id"], expected_status="pending", status="approved",
                                   resolved_by="async_user", resolved_at=int(time.time()))
    assert resolved is not None, "the record was not resolved"
    print(f"Resolved: {resolved['status']} by {resolved['resolved_by']}")
    count = _db.get_pending_approval_count()
    assert count == 0, count
    print("--- All checks passed ---")


if __name__ == "__main__":
    asyncio.run(main())
