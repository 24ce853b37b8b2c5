"""A team run streamed: the team's own paused event (told apart from a member's with ``isinstance``)
carries the requirements; the continued run is streamed into ``pprint``. First a member's call the
script runs itself, then one it rejects."""

import os
import shlex
import subprocess

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


@tool(external_execution=True)
def disk_usage(command: str) -> str:
    """Run a disk usage command on the operator's machine.

    Args:
        command (str): The command, "echo" only here.
    """
    record(f"disk_usage {command}")
    return subprocess.check_output(shlex.split(command), text=True).strip()


@tool(requires_confirmation=True)
def wipe_volume(volume: str) -> str:
    """Erase a storage volume.

    Args:
        volume (str): The volume.
    """
    record(f"wipe_volume {volume}")
    return f"Volume {volume} wiped"


storage_agent = Agent(
    name="Storage Agent",
    role="Looks after disks and volumes",
    model=OpenAIResponses(id="gpt-5-mini"),
    tools=[disk_usage, wipe_volume],
    db=db,
)
team = Team(name="Storage Team", members=[storage_agent], model=OpenAIResponses(id="gpt-5.2"), db=db)

def kept(events, into):
    """Pass a stream through, keeping its events."""
    for event in events:
        into.append(event)
        yield event


if __name__ == "__main__":
    team_pauses = 0
    for run_event in team.run("How full is the data disk?", stream=True):
        if isinstance(run_event, TeamRunPausedEvent):
            team_pauses += 1
            for req in run_event.active_requirements:
                if req.needs_external_execution:
                    print(f"Running {req.tool_execution.tool_name}({req.tool_execution.tool_args}) locally")
                    result = disk_usage.entrypoint(**req.tool_execution.tool_args)
                    req.set_external_execution_result(result)
            response = team.continue_run(run_id=run_event.run_id, session_id=run_event.session_id,
                                         requirements=run_event.requirements, stream=True)
            seen = []
            pprint.pprint_run_response(kept(response, seen))
            text = "".join(str(e.content) for e in seen if getattr(e, "content", None) is not None)
            print("DISK RUN:", text)
            assert "data: 71% used" in text, text
    assert team_pauses == 1, team_pauses

    team_pauses = 0
    for run_event in team.run("Wipe the scratch volume", stream=True):
        if isinstance(run_event, TeamRunPausedEvent):
            team_pauses += 1
            for req in run_event.active_requirements:
                if req.needs_confirmation:
                    print(f"Rejecting {req.tool_execution.tool_name}({req.tool_execution.tool_args})")
                    req.reject(note="Scratch holds today's builds")
            response = team.continue_run(run_id=run_event.run_id, session_id=run_event.session_id,
                                         requirements=run_event.requirements, stream=True)
            seen = []
            pprint.pprint_run_response(kept(response, seen))
            text = "".join(str(e.content) for e in seen if getattr(e, "content", None) is not None)
            print("REJECTED RUN:", text)
            assert "Scratch holds today's builds" in text and "wiped" not in text, text
    assert team_pauses == 1, team_pauses
    print("--- All checks passed ---")
