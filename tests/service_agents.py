"""The agent of the service walk-through test: ``hitl serve --agents tests.service_agents`` starts its runs,
and the test process's worker serves them. The model is the scripted server at ``OPENAI_BASE_URL``."""

from __future__ import annotations

from hitl import Agent, OpenAIChat, PostgresDb, tool
from hitl.approval import approval

TABLE = "approvals_walkthrough"
QUEUE = "hitl-walkthrough-tests"
SCRIPT = {"rules": [{"turns": [
    {"tool_calls": [{"name": "get_top_hackernews_stories", "arguments": {"num_stories": 2}}]},
    {"content": "Here are the top stories: {results}"}]}]}


@approval(approvers=["alice"])
@tool(requires_confirmation=True)
def get_top_hackernews_stories(num_stories: int) -> str:
    """Fetch top stories from Hacker News.

    Args:
        num_stories: Number of stories to retrieve
    """
    return f"{num_stories} stories"


agent = Agent(OpenAIChat("walkthrough"), name="walkthrough-agent", tools=[get_top_hackernews_stories],
              db=PostgresDb(approvals_table=TABLE), task_queue=QUEUE)
