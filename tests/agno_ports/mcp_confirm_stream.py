"""An MCP server's tool behind a confirmation, the run streamed (the shape of Agno's
``confirmation_required_mcp_toolkit``): the toolkit names the tool that needs a yes; every paused
event's requirements are answered at a ``rich`` prompt, and the continued run is streamed too."""

import asyncio
import os

from rich.console import Console
from rich.prompt import Prompt

from hitl.agent import Agent
from hitl.db.postgres import PostgresDb
from hitl.models.openai import OpenAIResponses
from hitl.tools.mcp import MCPTools

console = Console()

mcp_tools = MCPTools(
    transport="streamable-http",
    url=os.environ["LEDGER_MCP_URL"],
    requires_confirmation_tools=["search_docs"],  # Note: Tool names are case-sensitive
)

agent = Agent(
    model=OpenAIResponses(id="gpt-5.2"),
    tools=[mcp_tools],
    markdown=True,
    db=PostgresDb(db_url=os.environ["DATABASE_URL"]),
)


async def main():
    async for run_event in agent.arun("What are the ledger's fees?", stream=True):
        if run_event.is_paused:
            for requirement in run_event.active_requirements:
                if requirement.needs_confirmation:
                    console.print(
                        f"Tool name [bold blue]{requirement.tool_execution.tool_name}({requirement.tool_execution.tool_args})[/] requires confirmation."
                    )
                    message = Prompt.ask("Do you want to continue?", choices=["y", "n"], default="y").strip().lower()
                    if message == "n":
                        requirement.reject()
                    else:
                        requirement.confirm()

            async for resp in agent.acontinue_run(
                run_id=run_event.run_id,
                requirements=run_event.requirements,
                stream=True,
            ):
                if resp.content:
                    print(resp.content, end="")
        else:
            if run_event.content:
                print(run_event.content, end="")

    print()


if __name__ == "__main__":
    asyncio.run(main())
