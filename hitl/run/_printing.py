"""What Agno's ``agent.print_response(...)`` prints, for a hitl run.

:func:`print_run` renders a finished leg of a run (the :class:`RunOutput` its call returned):
rich panels "Message", "Tool Calls" (if any) and "Response (X.Xs)", or on an agent's pause a
"Run Paused" panel listing the calls that wait::

    Run is paused. The following tool calls require confirmation:
    • get_top_hackernews_stories(num_stories=2)

(and "require user input", "require external execution" sections, as Agno words them). A team's
pause shows, as Agno's ``Team.print_response`` does, its paused text in the Response panel.

:func:`print_run_stream` and :func:`aprint_run_stream` do the same live from the events of a
``stream=True`` call (:mod:`hitl.run.agent`, :mod:`hitl.run.team`), as Agno's streaming
``print_response`` does. ``Agent.print_response``/``aprint_response`` call these.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from rich.box import HEAVY
from rich.console import Console, Group, RenderableType
from rich.json import JSON
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.status import Status
from rich.text import Text

from hitl.run import RunOutput, RunRequirement, RunStatus, ToolExecution
from hitl.run import agent as agent_events
from hitl.run import team as team_events
from hitl.run._events import paused_content

__all__ = ["print_run", "print_run_stream", "aprint_run_stream", "paused_panel", "format_tool_call"]

_MARKDOWN_TAGS = ("think", "thinking")
_SECTIONS = (
    ("confirmation", "The following tool calls require confirmation:\n"),
    ("user_input", "The following tool calls require user input:\n"),
    ("external_execution", "The following tool calls require external execution:\n"),
)


def _panel(content: RenderableType, title: str, border_style: str = "blue") -> Panel:
    return Panel(content, title=title, title_align="left", border_style=border_style, box=HEAVY, expand=True,
                 padding=(1, 1))


def _arguments(tool: Any) -> dict[str, Any]:
    found = getattr(tool, "arguments", None)
    if found is None:
        found = getattr(tool, "tool_args", None)  # an Agno-shaped tool, should one be passed
    return dict(found or {})


def format_tool_call(tool: ToolExecution) -> str:
    """A call as Agno lists it: ``name(k=v, k2=v2)``, values as ``str`` shows them."""
    return f"{tool.tool_name}({', '.join(f'{k}={v}' for k, v in _arguments(tool).items())})"


def paused_panel(requirements: Sequence[RunRequirement]) -> Panel | None:
    """Agno's "Run Paused" panel: the paused calls under what each waits for; None without any."""
    if not requirements:
        return None
    text = Text("Run is paused. ")
    for kind, heading in _SECTIONS:
        calls = [r.tool_execution for r in requirements if r.kind == kind]
        if calls:
            text.append(heading)
            for call in calls:
                text.append(f"• {format_tool_call(call)}\n")
    return _panel(text, "Run Paused")


def _message_panel(message: str) -> Panel:
    return _panel(Text(message, style="green"), "Message", border_style="cyan")


def _tool_calls_panel(tools: Sequence[ToolExecution], team: bool) -> Panel | None:
    if not tools:
        return None
    lines = [f"• {format_tool_call(t)}" for t in tools]
    return _panel(("\n\n" if team else "\n").join(lines), "Team Tool Calls" if team else "Tool Calls",
                  border_style="yellow")


def _escape_tags(text: str) -> str:
    for tag in _MARKDOWN_TAGS:
        text = text.replace(f"<{tag}>", f"&lt;{tag}&gt;").replace(f"</{tag}>", f"&lt;/{tag}&gt;")
    return text


def _renderable(content: Any, markdown: bool) -> RenderableType:
    if content is None:
        return ""
    if isinstance(content, str):
        return Markdown(_escape_tags(content)) if markdown else content
    if isinstance(content, BaseModel):
        return JSON(content.model_dump_json(exclude_none=True), indent=2)
    try:
        return JSON(json.dumps(content), indent=4)
    except (TypeError, ValueError):
        return str(content)


def _response_panel(content: RenderableType, elapsed: float) -> Panel:
    return _panel(content, f"Response ({elapsed:.1f}s)")


def _run_tools(output: RunOutput, team: bool) -> list[ToolExecution]:
    """The run's tool calls as far as its output knows them.

    ``output.tools`` when the output carries them; otherwise the calls of its latest pause (a
    team's own, not its members'): the calls made without a pause are not in a RunOutput.
    """
    tools = getattr(output, "tools", None)
    if tools:
        return list(tools)
    return [r.tool_execution for r in output.requirements if not (team and r.member_agent_name)]


def print_run(
    output: RunOutput,
    *,
    message: str,
    markdown: bool,
    elapsed: float,
    console: Console | None = None,
    team: bool = False,
    show_message: bool = True,
) -> None:
    """Print a leg of a run as Agno's ``print_response`` does.

    Args:
        output: What ``run``/``continue_run`` returned.
        message: The input, shown in the "Message" panel.
        markdown: Render the response as Markdown.
        elapsed: Seconds the call took, shown in the Response panel's title.
        console: Where to print; a new ``rich`` Console otherwise.
        team: A team's run: "Team Tool Calls", and a pause shown as the team's paused text.
        show_message: Show the "Message" panel.
    """
    console = console or Console()
    panels: list[RenderableType] = []
    if show_message and message:
        panels.append(_message_panel(message))
    if output.status == RunStatus.paused and not team:
        shown = paused_panel(output.requirements)
        if shown is not None:
            panels.append(shown)
    else:
        calls = _tool_calls_panel(_run_tools(output, team), team)
        if calls is not None:
            panels.append(calls)
        content: Any = output.content
        if output.status == RunStatus.paused:
            content = paused_content(output, team=True)
        elif content is None and output.error:
            content = output.error
        panels.append(_response_panel(_renderable(content, markdown), elapsed))
    console.print(Group(*panels))


class _LiveRun:
    """What a streamed run shows so far: its message, tool calls, text and pause."""

    def __init__(self, message: str, markdown: bool, show_message: bool) -> None:
        self.message, self.markdown, self.show_message = message, markdown, show_message
        self.started = time.monotonic()
        self.elapsed = 0.0
        self.status = Status("Working...", spinner="aesthetic", speed=0.4)
        self.text = ""
        self.structured: Any = None
        self.tools: list[ToolExecution] = []
        self.team_tools: list[ToolExecution] = []
        self.paused: Panel | None = None
        self.ended = False

    def _add_content(self, content: Any) -> None:
        if isinstance(content, str):
            self.text += content
        elif content is not None:
            self.structured = content

    def feed(self, event: Any) -> None:
        """Take one item of the stream (items after a pause, and members' events, are skipped)."""
        if self.ended:
            return
        self.elapsed = time.monotonic() - self.started
        if isinstance(event, agent_events.BaseAgentRunEvent):
            if event.parent_run_id is not None:
                return  # a member's event in a team's stream: Agno's team printer shows the team's
            if isinstance(event, agent_events.RunPausedEvent):
                self.paused = paused_panel(event.requirements or [])
                self.ended = True
            elif isinstance(event, agent_events.ToolCallStartedEvent) and event.tool is not None:
                self.tools.append(event.tool)
            elif isinstance(event, agent_events.RunContentEvent):
                self._add_content(event.content)
            elif isinstance(event, agent_events.RunErrorEvent) and not self.text:
                self._add_content(event.content)
        elif isinstance(event, team_events.BaseTeamRunEvent):
            if isinstance(event, team_events.RunPausedEvent):
                if not self.text:
                    self._add_content(event.content)
                self.ended = True
            elif isinstance(event, team_events.ToolCallCompletedEvent) and event.tool is not None:
                if all(t.tool_call_id != event.tool.tool_call_id for t in self.team_tools):
                    self.team_tools.append(event.tool)
            elif isinstance(event, team_events.RunContentEvent):
                self._add_content(event.content)
            elif isinstance(event, team_events.RunErrorEvent) and not self.text:
                self._add_content(event.content)

    def render(self, final: bool = False) -> Group:
        panels: list[RenderableType] = [] if final else [self.status]
        if self.show_message and self.message:
            panels.append(_message_panel(self.message))
        for tools, team in ((self.tools, False), (self.team_tools, True)):
            shown = _tool_calls_panel(tools, team)
            if shown is not None:
                panels.append(shown)
        content = self.text if self.text else self.structured
        if content is not None and content != "":
            panels.append(_response_panel(_renderable(content, self.markdown), self.elapsed))
        if self.paused is not None:
            panels.append(self.paused)
        return Group(*panels)


def print_run_stream(
    events: Iterable[Any],
    *,
    message: str,
    markdown: bool,
    console: Console | None = None,
    show_message: bool = True,
) -> None:
    """Print a streamed run live, as Agno's ``print_response(stream=True)`` does.

    The Response panel grows with the ``RunContent`` events; ``ToolCallStarted`` events fill
    "Tool Calls"; an agent's ``RunPaused`` adds the "Run Paused" panel and ends the display (the
    rest of the stream is consumed, unshown). A team's own events are shown, its members' are not.
    """
    view = _LiveRun(message, markdown, show_message)
    with Live(console=console) as live:
        live.update(view.render())
        for event in events:
            view.feed(event)
            live.update(view.render())
        live.update(view.render(final=True))


async def aprint_run_stream(
    events: AsyncIterable[Any],
    *,
    message: str,
    markdown: bool,
    console: Console | None = None,
    show_message: bool = True,
) -> None:
    """:func:`print_run_stream` for an async iterator (``arun``/``acontinue_run(stream=True)``)."""
    view = _LiveRun(message, markdown, show_message)
    with Live(console=console) as live:
        live.update(view.render())
        async for event in events:
            view.feed(event)
            live.update(view.render())
        live.update(view.render(final=True))
