"""``agent.print_response`` on a run that pauses: it prints a "Run Paused" panel naming the call
that waits, and the tool does not run."""

import contextlib
import io
import os

from hitl.agent import Agent
from hitl.db.postgres import PostgresDb
from hitl.models.openai import OpenAIChat
from hitl.tools import tool


def record(line: str) -> None:
    path = os.getenv("PORT_TOOL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@tool(requires_confirmation=True)
def water_plants(zone: str, liters: int) -> str:
    """Open the garden's sprinklers.

    Args:
        zone (str): Which part of the garden.
        liters (int): How much water.
    """
    record(f"water_plants {zone} {liters}")
    return f"Gave {liters} liters to {zone}"


agent = Agent(
    model=OpenAIChat(id="gpt-4o"),
    tools=[water_plants],
    markdown=True,
    db=PostgresDb(db_url=os.getenv("DATABASE_URL", "postgresql+psycopg://ai:ai@localhost:5532/ai")),
)

if __name__ == "__main__":
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        agent.print_response("Water the roses with 12 liters")
    print(shown.getvalue())
    assert "Run Paused" in shown.getvalue(), shown.getvalue()
    assert "water_plants" in shown.getvalue(), shown.getvalue()
    path = os.getenv("PORT_TOOL_LOG")
    assert not path or "water_plants" not in open(path).read(), "the tool ran without a yes"
    print("--- All checks passed ---")
