"""A team whose member has a gated tool: the member's call pauses the whole team. The user answers
at the terminal (the member's name shown); a "n" rejects with a note. Two runs in one session, the
second with the first in its history."""

import os

from rich.console import Console
from rich.prompt import Prompt

from hitl.agent import Agent
from hitl.db.postgres import PostgresDb
from hitl.models.openai import OpenAIResponses
from hitl.team.team import Team
from hitl.tools import tool
from hitl.utils import pprint

console = Console()
db = PostgresDb(db_url=os.getenv("DATABASE_URL", "postgresql+psycopg://ai:ai@localhost:5532/ai"))


def record(line: str) -> None:
    path = os.getenv("PORT_TOOL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@tool(requires_confirmation=True)
def restart_server(host: str) -> str:
    record(f"restart_server {host}")
    return f"{host} restarted"


ops_agent = Agent(
    name="OpsAgent",
    model=OpenAIResponses(id="gpt-5-mini"),
    tools=[restart_server],
    db=db,
    telemetry=False,
)

team = Team(
    name="InfraTeam",
    model=OpenAIResponses(id="gpt-5.2"),
    members=[ops_agent],
    db=db,
    telemetry=False,
    add_history_to_context=True,
)


def answer(run_response):
    members = []
    for requirement in run_response.active_requirements:
        if requirement.needs_confirmation:
            members.append(requirement.member_agent_name)
            console.print(f"Member [bold cyan]{requirement.member_agent_name}[/] wants to run "
                          f"[bold blue]{requirement.tool_execution.tool_name}({requirement.tool_execution.tool_args})[/]")
            message = Prompt.ask("Do you want to continue?", choices=["y", "n"], default="y").strip().lower()
            if message == "n":
                requirement.reject(note="Not during office hours")
            else:
                requirement.confirm()
    return members


if __name__ == "__main__":
    session_id = "infra_session"
    run_response = team.run("Restart the web-1 server", session_id=session_id)
    assert run_response.is_paused, run_response.status
    members = answer(run_response)
    print("members:", members)
    assert members == ["OpsAgent"], members
    run_response = team.continue_run(run_response)
    pprint.pprint_run_response(run_response)
    assert not run_response.is_paused, run_response.status
    print("FIRST:", run_response.content)
    assert "web-1 restarted" not in run_response.content, run_response.content

    run_response = team.run("Restart the web-2 server", session_id=session_id)
    assert run_response.is_paused, run_response.status
    assert answer(run_response) == ["OpsAgent"]
    run_response = team.continue_run(run_response)
    pprint.pprint_run_response(run_response)
    assert not run_response.is_paused, run_response.status
    print("SECOND:", run_response.content)
    assert "web-2 restarted" in run_response.content, run_response.content
