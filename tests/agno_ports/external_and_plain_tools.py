"""A tool the caller runs itself, beside a plain function the agent runs.

``count_lines`` reads a file on the user's machine, so the run hands the call back: the script runs
the tool's own function with the model's arguments (``.entrypoint``) and gives the run the result.
``today`` is a plain, undecorated function: the agent runs it without asking.
"""

import os

from hitl.agent import Agent
from hitl.db.postgres import PostgresDb
from hitl.models.openai import OpenAIResponses
from hitl.tools import tool
from hitl.utils import pprint


def record(line: str) -> None:
    path = os.getenv("PORT_TOOL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def traces() -> list:
    path = os.getenv("PORT_TOOL_LOG")
    return open(path).read().splitlines() if path else []


def today() -> str:
    """Today's date."""
    record("today")
    return "Tuesday 2 January 2029"


@tool(external_execution=True)
def count_lines(path: str) -> str:
    """Count the lines of a text file on the user's computer.

    Args:
        path (str): The file.
    """
    record(f"count_lines {path}")
    with open(path) as f:
        return f"{path} has {sum(1 for _ in f)} lines"


agent = Agent(
    model=OpenAIResponses(id="gpt-5-mini"),
    tools=[count_lines, today],
    markdown=True,
    db=PostgresDb(db_url=os.getenv("DATABASE_URL", "postgresql+psycopg://ai:ai@localhost:5532/ai")),
)

if __name__ == "__main__":
    with open("shopping.txt", "w") as f:
        f.write("eggs\nflour\nmilk\n")

    run_response = agent.run("How long is my shopping.txt today?")
    assert run_response.is_paused, run_response.status
    assert not any(t.startswith("count_lines") for t in traces()), traces()

    for requirement in run_response.active_requirements:
        if requirement.needs_external_execution:
            if requirement.tool_execution.tool_name == count_lines.name:
                print(f"Running {requirement.tool_execution.tool_name}({requirement.tool_execution.tool_args}) here")
                result = count_lines.entrypoint(**requirement.tool_execution.tool_args)
                requirement.set_external_execution_result(result)

    run_response = agent.continue_run(run_id=run_response.run_id, requirements=run_response.requirements)
    pprint.pprint_run_response(run_response)
    assert not run_response.is_paused, run_response.status
    print("FINAL:", run_response.content)
    assert "shopping.txt has 3 lines" in run_response.content, run_response.content
    assert "2 January 2029" in run_response.content, run_response.content
    assert traces().count("today") == 1 and traces().count("count_lines shopping.txt") == 1, traces()
