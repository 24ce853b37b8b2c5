"""A team member that asks the user for input twice in one run: the loop answers every pause,
giving ``provide_user_input`` a value for every field of the schema."""

import os

from rich.console import Console
from rich.prompt import Prompt

from hitl.agent import Agent
from hitl.db.postgres import PostgresDb
from hitl.models.openai import OpenAIResponses
from hitl.team import Team
from hitl.tools import tool
from hitl.utils import pprint

console = Console()
db = PostgresDb(db_url=os.getenv("DATABASE_URL", "postgresql+psycopg://ai:ai@localhost:5532/ai"))


def record(line: str) -> None:
    path = os.getenv("PORT_TOOL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@tool(requires_user_input=True, user_input_fields=["email"])
def ask_contact(email: str = "") -> str:
    """Ask for the user's e-mail address."""
    record(f"ask_contact {email}")
    return f"The user's e-mail is {email}"


@tool(requires_user_input=True, user_input_fields=["sport", "level"])
def ask_interests(sport: str = "", level: str = "") -> str:
    """Ask which sport the user plays, and how well."""
    record(f"ask_interests {sport} {level}")
    return f"The user plays {sport} at {level} level"


coach_agent = Agent(
    name="CoachAgent",
    model=OpenAIResponses(id="gpt-5-mini"),
    tools=[ask_contact, ask_interests],
    instructions=["First ask for the e-mail address.", "Then ask about the sport.", "Then suggest a club."],
    db=db,
    telemetry=False,
)

team = Team(
    name="ClubTeam",
    model=OpenAIResponses(id="gpt-5.2"),
    members=[coach_agent],
    instructions="Hand every request to the CoachAgent.",
    db=db,
    telemetry=False,
    add_history_to_context=True,
)

if __name__ == "__main__":
    run_response = team.run("Find me a sports club", session_id="club_session")
    rounds = []
    while run_response.is_paused:
        console.print("[bold yellow]The team needs input[/]")
        for requirement in run_response.active_requirements:
            if requirement.needs_user_input:
                console.print(f"Member [bold cyan]{requirement.member_agent_name}[/] asks for "
                              f"[bold blue]{requirement.tool_execution.tool_name}[/]")
                values = {}
                for field in requirement.user_input_schema or []:
                    values[field.name] = Prompt.ask(f"  {field.name}", default=field.value or "")
                rounds.append((requirement.member_agent_name, requirement.tool_execution.tool_name, values))
                requirement.provide_user_input(values)
        run_response = team.continue_run(run_response)

    pprint.pprint_run_response(run_response)
    print("rounds:", rounds)
    assert [r[1] for r in rounds] == ["ask_contact", "ask_interests"], rounds
    assert all(r[0] == "CoachAgent" for r in rounds), rounds
    assert rounds[1][2] == {"sport": "tennis", "level": "beginner"}, rounds
    print("FINAL:", run_response.content)
    assert "tennis at beginner level" in run_response.content, run_response.content
