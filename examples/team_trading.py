"""The reference's "Team Approvals" snippet, unchanged but for the imports and the two helpers it
leaves undefined (``search_market_data`` and ``trade_stock``).

Served by ``python worker.py --agents examples.team_trading``; run by ``python starter.py``.
"""

from hitl.agent import Agent
from hitl.approval import approval
from hitl.db.postgres import PostgresDb
from hitl.team import Team
from hitl.tools import tool

db = PostgresDb(session_table="agent_sessions", approvals_table="approvals")


@tool
def search_market_data(symbol: str) -> str:
    """Look up recent market data for a stock symbol."""
    return f"{symbol}: last 189.90, 52-week range 164-237, consensus rating buy"


def trade_stock(symbol: str, quantity: int) -> str:
    return f"Bought {quantity} {symbol} at market"


# ---- the reference's snippet, from here ----

@approval
@tool(requires_confirmation=True)
def execute_trade(symbol: str, quantity: int) -> str:
    """Execute a stock trade."""
    return trade_stock(symbol, quantity)

research_agent = Agent(
    name="Researcher",
    role="Research stocks",
    tools=[search_market_data],
)

trader_agent = Agent(
    name="Trader",
    role="Execute trades",
    tools=[execute_trade],  # Requires approval
)

team = Team(
    agents=[research_agent, trader_agent],
    db=db,
)


def main():
    response = team.run("Buy 100 shares of AAPL")
    print(f"Team run {response.run_id} started")

    if response.is_paused:
        print(f"Status: {response.status}")
        # Approve trade
        for req in response.active_requirements:
            if req.needs_confirmation:
                print(f"Member: {req.member_agent_name} (run {req.member_run_id})")
                print(f"Approve trade: {req.tool_execution.arguments}")
                req.confirm()
                print(f"Decision: confirmed {req.id}")

        response = team.continue_run(response.run_id, response.requirements)
        print(f"Status: {response.status}")
        print(response.content)
    return response


if __name__ == "__main__":
    main()
