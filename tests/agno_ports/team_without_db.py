"""Teams with no database: the paused ``TeamRunOutput`` itself is handed back to ``continue_run``.
First a member's call rejected with a note, then a call of the team's own tool confirmed."""

import os

from hitl.agent import Agent
from hitl.models.openai import OpenAIResponses
from hitl.team.team import Team
from hitl.tools import tool


def record(line: str) -> None:
    path = os.getenv("PORT_TOOL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@tool(requires_confirmation=True)
def drop_table(table: str) -> str:
    """Drop a database table.

    Args:
        table (str): The table.
    """
    record(f"drop_table {table}")
    return f"Table {table} dropped"


@tool(requires_confirmation=True)
def publish_release(version: str, channel: str) -> str:
    """Publish a release to a channel.

    Args:
        version (str): The version.
        channel (str): Where to publish it.
    """
    record(f"publish_release {version} {channel}")
    return f"Release {version} published to {channel}"


dba_agent = Agent(
    name="DBA Agent",
    role="Runs database maintenance",
    model=OpenAIResponses(id="gpt-5-mini"),
    tools=[drop_table],
)
db_team = Team(name="Data Team", members=[dba_agent], model=OpenAIResponses(id="gpt-5.2"))

writer_agent = Agent(
    name="Notes Agent",
    role="Writes release notes",
    model=OpenAIResponses(id="gpt-5-mini"),
)
release_team = Team(
    name="Release Team",
    members=[writer_agent],
    model=OpenAIResponses(id="gpt-5.5"),
    tools=[publish_release],
)

if __name__ == "__main__":
    response = db_team.run("Drop the table sessions_old")
    print(f"Status: {response.status}")
    assert response.is_paused, response.status
    for req in response.requirements:
        if req.needs_confirmation:
            print(f"Rejecting {req.member_agent_name}: {req.tool_execution.tool_name}({req.tool_execution.tool_args})")
            assert req.member_agent_name == "DBA Agent", req.member_agent_name
            req.reject(note="Dropping tables needs a ticket first")
    response = db_team.continue_run(response)
    print("DATA TEAM:", response.content)
    assert not response.is_paused, response.status
    assert "dropped" not in response.content, response.content

    response = release_team.run("Publish version 3.2 to the beta channel")
    assert response.is_paused, response.status
    for req in response.requirements:
        if req.needs_confirmation:
            print(f"Confirming the team's own {req.tool_execution.tool_name}({req.tool_execution.tool_args})")
            assert req.member_agent_name is None, req.member_agent_name
            req.confirm()
    response = release_team.continue_run(response)
    print("RELEASE TEAM:", response.content)
    assert not response.is_paused, response.status
    assert "Release 3.2 published to beta" in response.content, response.content
