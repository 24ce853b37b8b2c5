"""The async team stream: ``async for`` over ``team.arun(..., stream=True)``, and the continued
run (``team.acontinue_run(..., stream=True)``, not awaited) printed by ``apprint_run_response``."""

import asyncio
import os

from hitl.agent import Agent
from hitl.db.postgres import PostgresDb
from hitl.models.openai import OpenAIResponses
from hitl.run.team import RunPausedEvent as TeamRunPausedEvent
from hitl.team.team import Team
from hitl.tools import tool
from hitl.utils import pprint

db = PostgresDb(db_url=os.getenv("DATABASE_URL", "postgresql+psycopg://ai:ai@localhost:5532/ai"))


def record(line: str) -> None:
    path = os.getenv("PORT_TOOL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@tool(requires_user_input=True, user_input_fields=["seat"])
def reserve_seat(train: str, seat: str) -> str:
    """Reserve a seat on a train.

    Args:
        train (str): The train.
        seat (str): The seat.
    """
    record(f"reserve_seat {train} {seat}")
    return f"Seat {seat} on {train} reserved"


rail_agent = Agent(
    name="Rail Agent",
    role="Books train travel",
    model=OpenAIResponses(id="gpt-5-mini"),
    tools=[reserve_seat],
    instructions="Reserve seats with reserve_seat.",
    db=db,
)
team = Team(name="Travel Desk", members=[rail_agent], model=OpenAIResponses(id="gpt-5.2"),
            instructions="Send train bookings to the Rail Agent.", db=db)


async def kept(events, into):
    """Pass an async stream through, keeping its events."""
    async for event in events:
        into.append(event)
        yield event


async def main():
    team_pauses = 0
    async for run_event in team.arun("Reserve me a seat on the 8:15 to Leeds", stream=True):
        if isinstance(run_event, TeamRunPausedEvent):
            team_pauses += 1
            print("Team paused - input needed")
            for req in run_event.active_requirements:
                print(f"  needs_user_input={req.needs_user_input} needs_confirmation={req.needs_confirmation}")
                if req.needs_user_input:
                    for field in req.user_input_schema:
                        print(f"  {field.name} - {field.description}")
                    req.provide_user_input({"seat": "14A"})
            response = team.acontinue_run(run_id=run_event.run_id, session_id=run_event.session_id,
                                          requirements=run_event.requirements, stream=True)
            seen = []
            await pprint.apprint_run_response(kept(response, seen))
            text = "".join(str(e.content) for e in seen if getattr(e, "content", None) is not None)
            print("CONTINUED:", text)
            assert "Seat 14A on 8:15 to Leeds reserved" in text, text
    assert team_pauses == 1, team_pauses
    print("--- All checks passed ---")


if __name__ == "__main__":
    asyncio.run(main())
