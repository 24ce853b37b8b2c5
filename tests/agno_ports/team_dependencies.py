"""Dependencies given to ``team.arun`` and again to ``team.acontinue_run`` reach the member's gated
tool through ``run_context.dependencies``; the team has no database."""

import asyncio
import os
from typing import Any

from hitl.agent import Agent
from hitl.models.openai import OpenAIResponses
from hitl.run import RunContext
from hitl.team.team import Team
from hitl.tools import tool


def record(line: str) -> None:
    path = os.getenv("PORT_TOOL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@tool(requires_confirmation=True)
def unfollow_accounts(list_name: str, accounts: list, run_context: RunContext) -> dict[str, Any]:
    """Remove accounts from a watch list.

    Args:
        list_name (str): The list.
        accounts (list): The accounts to remove.
    """
    token = (run_context.dependencies or {}).get("session_token")
    record(f"unfollow_accounts {list_name} {accounts} {token}")
    if not token:
        return {"ok": False, "error": "no session token"}
    return {"ok": True, "list": list_name, "removed": accounts, "token_tail": token[-4:]}


social_agent = Agent(
    name="Social Agent",
    role="Manages watch lists",
    model=OpenAIResponses(id="gpt-5-mini"),
    tools=[unfollow_accounts],
)
team = Team(
    name="Social Team",
    members=[social_agent],
    model=OpenAIResponses(id="gpt-5.2"),
    instructions=["Send watch list changes to the Social Agent."],
)


async def main():
    dependencies = {"session_token": "tok-secret-9f3a"}
    response = await team.arun("Remove @spam1 from my news list", dependencies=dependencies)
    assert response.is_paused, response.status
    for req in response.active_requirements:
        if req.needs_confirmation:
            print(f"Confirming {req.tool_execution.tool_name}({req.tool_execution.tool_args})")
            req.confirm()
    final = await team.acontinue_run(response, dependencies=dependencies)
    print("FINAL:", final.content)
    assert not final.is_paused, final.status
    # The tool's dict comes back as text (JSON on hitl, where Agno shows Python's str() of it).
    assert "9f3a" in final.content and "no session token" not in final.content, final.content


if __name__ == "__main__":
    asyncio.run(main())
