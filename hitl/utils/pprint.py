"""Agno's ``pprint_run_response`` at Agno's import path (``from agno.utils import pprint``).

Given a :class:`~hitl.run.RunOutput` (an agent's or a team's) it prints one table holding the
run's content; given the iterator a ``stream=True`` call returns, it consumes it to the end,
showing the ``content`` of the events as they come, concatenated::

    from hitl.utils import pprint

    pprint.pprint_run_response(agent.continue_run(run_id=..., requirements=...))
    pprint.pprint_run_response(team.continue_run(..., stream=True))
    await pprint.apprint_run_response(team.acontinue_run(..., stream=True))
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, Iterable
from typing import Any

from pydantic import BaseModel
from rich.box import ROUNDED
from rich.console import Console, RenderableType
from rich.json import JSON
from rich.live import Live
from rich.markdown import Markdown
from rich.status import Status
from rich.table import Table

from hitl.run import RunOutput, RunStatus
from hitl.run._events import paused_content
from hitl.run.agent import RUN_OUTPUT_EVENT_TYPES, RunOutputEvent
from hitl.run.team import TEAM_RUN_OUTPUT_EVENT_TYPES, TeamRunOutputEvent

__all__ = ["pprint_run_response", "apprint_run_response"]

_EVENT_TYPES = RUN_OUTPUT_EVENT_TYPES + TEAM_RUN_OUTPUT_EVENT_TYPES


def _table() -> Table:
    return Table(box=ROUNDED, border_style="blue", show_header=False)


def _content_of(output: RunOutput, markdown: bool) -> RenderableType:
    """A run's content as Agno shows it: text (Markdown if asked), or JSON for other values."""
    content: Any = output.content
    if not content and output.status == RunStatus.paused:
        content = paused_content(output)
    elif content is None and output.error:
        content = output.error
    if isinstance(content, str):
        return Markdown(content) if markdown else content
    if isinstance(content, BaseModel):
        return JSON(content.model_dump_json(exclude_none=True), indent=2)
    try:
        return JSON(json.dumps(content), indent=4)
    except (TypeError, ValueError):
        return str(content)


def _print_output(output: RunOutput, markdown: bool, console: Console) -> None:
    table = _table()
    table.add_row(_content_of(output, markdown))
    console.print(table)


class _Stream:
    """The concatenated content of a stream's events, and the table showing it."""

    def __init__(self, markdown: bool, show_time: bool) -> None:
        self.markdown, self.show_time = markdown, show_time
        self.text = ""
        self.started = time.monotonic()

    def add(self, item: Any) -> None:
        if not isinstance(item, _EVENT_TYPES):
            return  # not an event (a RunOutput some streams also yield): Agno skips it too
        content = getattr(item, "content", None)
        if content is None:
            return
        if isinstance(content, BaseModel):
            self.text = content.model_dump_json(exclude_none=True, indent=2)
        elif isinstance(content, str):
            self.text += content
        else:
            try:
                self.text += json.dumps(content)
            except (TypeError, ValueError):
                self.text += str(content)

    def table(self) -> Table:
        shown: RenderableType = Markdown(self.text) if self.markdown else self.text
        table = _table()
        if self.show_time:
            table.add_row(f"Response\n({time.monotonic() - self.started:.1f}s)", shown)
        else:
            table.add_row(shown)
        return table


def pprint_run_response(
    run_response: RunOutput | Iterable[RunOutputEvent] | Iterable[TeamRunOutputEvent] | Iterable[Any],
    markdown: bool = False,
    show_time: bool = False,
    *,
    console: Console | None = None,
) -> None:
    """Print a run's content, or consume a stream of its events printing their content live.

    Args:
        run_response: A :class:`RunOutput` (a paused one shows its paused text), or the iterator
            of events ``run``/``continue_run(stream=True)`` returns: every event's ``content``
            is appended as it comes; items that are not events are skipped.
        markdown: Render the content as Markdown.
        show_time: For a stream: a first column with the seconds elapsed.
        console: Where to print (hitl's addition, for tests); a new ``rich`` Console otherwise.
    """
    console = console or Console()
    if isinstance(run_response, RunOutput):
        _print_output(run_response, markdown, console)
        return
    stream = _Stream(markdown, show_time)
    with Live(console=console) as live:
        live.update(Status("Working...", spinner="dots"))
        for item in run_response:
            stream.add(item)
            live.update(stream.table())
        live.update(stream.table())


async def apprint_run_response(
    run_response: RunOutput | AsyncIterable[Any] | Iterable[Any],
    markdown: bool = False,
    show_time: bool = False,
    *,
    console: Console | None = None,
) -> None:
    """:func:`pprint_run_response` for an async iterator (``arun``/``acontinue_run(stream=True)``).

    A :class:`RunOutput` or a plain iterator is printed as :func:`pprint_run_response` does.
    """
    console = console or Console()
    if isinstance(run_response, RunOutput):
        _print_output(run_response, markdown, console)
        return
    stream = _Stream(markdown, show_time)
    with Live(console=console) as live:
        live.update(Status("Working...", spinner="dots"))
        if isinstance(run_response, AsyncIterable):
            async for item in run_response:
                stream.add(item)
                live.update(stream.table())
        else:
            for item in run_response:
                stream.add(item)
                live.update(stream.table())
        live.update(stream.table())
