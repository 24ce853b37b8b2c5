"""The reference's Quick Start, unchanged but for the imports, the database line and where Hacker
News is read from (``HN_API_URL``, so the offline demo can serve canned stories).

Served by ``python worker.py --agents examples.quickstart``; run by ``python starter.py``.
"""

import json
import os

import httpx

from hitl.agent import Agent
from hitl.approval import approval
from hitl.db.postgres import PostgresDb
from hitl.models.openai import OpenAIResponses
from hitl.tools import tool

HN = os.environ.get("HN_API_URL", "https://hacker-news.firebaseio.com/v0")


@approval  # Requires approval before execution
@tool(requires_confirmation=True)
def get_top_hackernews_stories(num_stories: int) -> str:
    """Fetch top stories from Hacker News.

    Args:
        num_stories: Number of stories to retrieve

    Returns:
        JSON string of story details
    """
    response = httpx.get(f"{HN}/topstories.json")
    story_ids = response.json()
    stories = []
    for story_id in story_ids[:num_stories]:
        story = httpx.get(f"{HN}/item/{story_id}.json").json()
        stories.append(story)
    return json.dumps(stories)


# Create agent with database (required for approval tracking)
db = PostgresDb(
    session_table="agent_sessions",
    approvals_table="approvals",
)

agent = Agent(
    model=OpenAIResponses(id="gpt-5-mini"),
    tools=[get_top_hackernews_stories],
    db=db,
)


def main():
    # Agent will pause and wait for approval
    response = agent.run("Fetch the top 2 hackernews stories")
    print(f"Run {response.run_id} started")

    if response.is_paused:
        print(f"Status: {response.status}")  # "paused"

        # Review and approve requirements
        for req in response.active_requirements:
            if req.needs_confirmation:
                print(f"Tool: {req.tool_execution.tool_name}")
                print(f"Args: {req.tool_execution.arguments}")
                req.confirm()  # Approve execution
                print(f"Decision: confirmed {req.id}")

        # Continue execution
        response = agent.continue_run(
            run_id=response.run_id,
            requirements=response.requirements,
        )
        print(f"Status: {response.status}")
        print(response.content)
    return response


if __name__ == "__main__":
    main()
