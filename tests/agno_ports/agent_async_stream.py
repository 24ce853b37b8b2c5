"""An agent's run streamed with ``async for``: the paused event carries the requirements; after the
answer the continued run is streamed too, its content printed as it comes."""

import asyncio
import os

from rich.console import Console
from rich.prompt import Prompt

from hitl.agent import Agent
from hitl.db.postgres import PostgresDb
from hitl.models.openai import OpenAIResponses
from hitl.tools import tool

console = Console()


def record(line: str) -> None:
    path = os.getenv("PORT_TOOL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@tool(requires_confirmation=True)
def book_table(restaurant: str, people: int) -> str:
    """Book a table at a restaurant.

    Args:
        restaurant (str): Where.
        people (int): For how many.
    """
    record(f"book_table {restaurant} {people}")
    return f"Table for {people} at {restaurant} is booked"


agent = Agent(
    model=OpenAIResponses(id="gpt-5.2"),
    tools=[book_table],
    markdown=True,
    db=PostgresDb(db_url=os.getenv("DATABASE_URL", "postgresql+psycopg://ai:ai@localhost:5532/ai")),
)


async def main():
    paused = 0
    streamed = []
    async for run_event in agent.arun("Book a table for 4 at Chez Nous", stream=True):
        if run_event.is_paused:
            paused += 1
            for requirement in run_event.active_requirements:
                if requirement.needs_confirmation:
                    console.print(f"Tool [bold blue]{requirement.tool_execution.tool_name}"
                                  f"({requirement.tool_execution.tool_args})[/] requires confirmation.")
                    answer = Prompt.ask("Do you want to continue?", choices=["y", "n"], default="y")
                    if answer.strip().lower() == "n":
                        requirement.reject()
                    else:
                        requirement.confirm()
            async for resp in agent.acontinue_run(run_id=run_event.run_id, requirements=run_event.requirements,
                                                  stream=True):
                assert not resp.is_paused, "paused again"
                if resp.content is not None:
                    streamed.append(str(resp.content))
                    print(resp.content, end="")
            print()
        elif run_event.content is not None:
            print(run_event.content, end="")
    assert paused == 1, f"paused {paused} times"
    text = "".join(streamed)
    print("STREAMED:", text)
    assert "Table for 4 at Chez Nous is booked" in text, text


if __name__ == "__main__":
    asyncio.run(main())
