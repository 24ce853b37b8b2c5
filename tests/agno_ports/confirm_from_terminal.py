"""Confirm or reject gated tools at the terminal.

The agent has two tools that need a yes from the user. Every call waits for an answer typed at a
``rich`` prompt; a "n" rejects the call with a note the model reads, and the model tries the other
tool. The loop goes on until the run is no longer paused.
"""

import os

from rich.console import Console
from rich.prompt import Prompt

from hitl.agent import Agent
from hitl.db.postgres import PostgresDb
from hitl.models.openai import OpenAIResponses
from hitl.tools import tool
from hitl.utils import pprint

console = Console()


def record(line: str) -> None:
    """Leave a trace of what the tools really did (a test reads it)."""
    path = os.getenv("PORT_TOOL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@tool(requires_confirmation=True)
def archive_mailbox(owner: str) -> str:
    """Archive every message in a mailbox.

    Args:
        owner (str): Whose mailbox.
    """
    record(f"archive_mailbox {owner}")
    return f"The mailbox of {owner} is archived"


@tool(requires_confirmation=True)
def snooze_mailbox(owner: str, hours: int, note: str = "") -> str:
    """Hold back new mail notifications for a while.

    Args:
        owner (str): Whose mailbox.
        hours (int): For how long.
        note (str): A note left for the owner.
    """
    record(f"snooze_mailbox {owner} {hours}")
    return f"The mailbox of {owner} is snoozed for {hours} hours"


db_url = os.getenv("DATABASE_URL", "postgresql+psycopg://ai:ai@localhost:5532/ai")

agent = Agent(
    model=OpenAIResponses(id="gpt-5-mini"),
    tools=[archive_mailbox, snooze_mailbox],
    markdown=True,
    db=PostgresDb(db_url=db_url),
)

if __name__ == "__main__":
    run_response = agent.run("My inbox is too noisy, can you quiet down the mailbox of dana?")
    assert run_response.is_paused, f"expected a pause, got {run_response.status}"

    asked = []
    while run_response.is_paused:
        for requirement in run_response.active_requirements:
            if requirement.needs_confirmation:
                name = requirement.tool_execution.tool_name
                args = requirement.tool_execution.tool_args
                console.print(f"Tool [bold blue]{name}({args})[/] requires confirmation.")
                asked.append((name, dict(args)))
                answer = Prompt.ask("Do you want to continue?", choices=["y", "n"], default="y").strip().lower()
                if answer == "n":
                    requirement.reject("Archiving loses mail for good. Snooze it instead.")
                else:
                    requirement.confirm()

        run_response = agent.continue_run(run_id=run_response.run_id, requirements=run_response.requirements)
        pprint.pprint_run_response(run_response)

    print("asked:", [name for name, _ in asked])
    assert [name for name, _ in asked] == ["archive_mailbox", "snooze_mailbox"], asked
    assert asked[0][1] == {"owner": "dana"}, asked[0]
    assert asked[1][1]["owner"] == "dana" and asked[1][1]["hours"] == 8, asked[1]
    # The model wrote the note it was given on rejecting the first call into its second call.
    assert "Snooze it instead" in asked[1][1]["note"], asked[1]
    assert "snoozed for 8 hours" in str(run_response.content), run_response.content
    assert "archived" not in str(run_response.content), run_response.content
    print("FINAL:", run_response.content)
