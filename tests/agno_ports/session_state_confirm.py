"""A gated tool that changes the session's state through ``run_context``.

The agent keeps a reading list in ``session_state``; its instructions show the list as it stands.
Adding a book waits for a yes. The state is read back with ``agent.get_session_state()`` after the
pause (unchanged: the tool has not run) and after each answer (changed only when confirmed).
"""

import os

from rich.console import Console
from rich.prompt import Prompt

from hitl.agent import Agent
from hitl.db.postgres import PostgresDb
from hitl.models.openai import OpenAIChat
from hitl.run import RunContext, RunStatus
from hitl.tools import tool
from hitl.utils import pprint

console = Console()


def record(line: str) -> None:
    path = os.getenv("PORT_TOOL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@tool(requires_confirmation=True)
def add_to_reading_list(run_context: RunContext, title: str) -> str:
    """Put a book on the user's reading list.

    Args:
        title: The book's title.
    """
    if run_context.session_state is None:
        run_context.session_state = {}
    books = run_context.session_state.get("reading_list", [])
    title = title.title()
    if title not in books:
        books.append(title)
    run_context.session_state["reading_list"] = books
    record(f"add_to_reading_list {title}")
    return f"Added {title}. The list is now {books}"


agent = Agent(
    model=OpenAIChat(id="gpt-4o-mini"),
    tools=[add_to_reading_list],
    session_state={"reading_list": []},
    instructions="Use add_to_reading_list whenever the user names a book. The reading list is: {reading_list}",
    db=PostgresDb(db_url=os.getenv("DATABASE_URL", "postgresql+psycopg://ai:ai@localhost:5532/ai")),
    markdown=True,
)


def ask_and_continue(run_response):
    for requirement in run_response.active_requirements:
        if requirement.needs_confirmation:
            console.print(f"Tool [bold blue]{requirement.tool_execution.tool_name}"
                          f"({requirement.tool_execution.tool_args})[/] requires confirmation.")
            answer = Prompt.ask("Do you want to continue?", choices=["y", "n"], default="y").strip().lower()
            if answer == "n":
                requirement.reject()
            else:
                requirement.confirm()
    run_response = agent.continue_run(run_id=run_response.run_id, requirements=run_response.requirements)
    pprint.pprint_run_response(run_response)
    return run_response


if __name__ == "__main__":
    run_response = agent.run("Please add the book dune to my reading list")
    console.print(f"Status: {run_response.status}")
    state = agent.get_session_state()
    print("state after pause:", state)
    if run_response.status != RunStatus.paused:
        raise SystemExit(f"the agent did not pause: {run_response.status}")
    assert state == {"reading_list": []}, state

    run_response = ask_and_continue(run_response)
    assert run_response.status == RunStatus.completed, run_response.status
    state = agent.get_session_state()
    print("state after yes:", state)
    assert state == {"reading_list": ["Dune"]}, state

    # The same session: the instructions now show ['Dune']; this time the answer is no.
    run_response = agent.run("Please add the book emma to my reading list")
    assert run_response.status == RunStatus.paused, run_response.status
    run_response = ask_and_continue(run_response)
    assert not run_response.is_paused
    state = agent.get_session_state()
    print("state after no:", state)
    assert state == {"reading_list": ["Dune"]}, state
