"""Scripts for the scripted model: which turn to answer, given the conversation so far.

A script is a list of rules; the first whose ``match`` (a regex) finds the last user message
gives the turns. The turn answered is the number of assistant messages since that user message,
so the same conversation always gets the same answer (retries and replays are safe)::

    {"rules": [{"match": "Transfer \\$(\\d+)",
                "turns": [{"tool_calls": [{"name": "transfer", "arguments": {"amount": "{num:1}"}}]},
                          {"content": "Done: {results}"}]}]}

Templates: ``{1}`` a group of the match, ``{num:1}`` the group as a number (a whole string only),
``{results}`` the tool results of the previous turn joined by " | ". A turn may carry
``"fail": {"status": 503, "times": 2}`` to fail the first two requests for it, or
``"fail": {"status": 200, "truncate": true}`` to answer with its body cut in half.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field


class ScriptedCall(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Failure(BaseModel):
    status: int
    times: int = 1
    message: str = "scripted failure"
    retry_after: float | None = None
    truncate: bool = False
    """Answer the turn with status 200 and its JSON body cut short, as a dropped connection would."""


class Turn(BaseModel):
    content: str | None = None
    tool_calls: list[ScriptedCall] = Field(default_factory=list)
    fail: Failure | None = None


class Rule(BaseModel):
    match: str = ""
    turns: list[Turn]


class Script(BaseModel):
    rules: list[Rule]


def choose(script: Script, messages: list[dict[str, Any]]) -> tuple[Turn, int, re.Match[str] | None, list[str]]:
    """The turn to answer, its index, the rule's match and the latest tool results."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    user_text = _text(messages[last_user]) if last_user >= 0 else ""
    after = messages[last_user + 1 :]
    index = sum(1 for m in after if m.get("role") == "assistant")
    results: list[str] = []
    for m in reversed(after):
        if m.get("role") != "tool":
            break
        results.insert(0, _text(m))
    for rule in script.rules:
        found = re.search(rule.match, user_text, re.S)
        if found is not None:
            turn = rule.turns[min(index, len(rule.turns) - 1)]
            if index >= len(rule.turns) and turn.tool_calls:
                turn = Turn(content="Done: {results}")
            return turn, index, found, results
    return Turn(content="I have no script for that."), index, None, results


def render_text(template: str, found: re.Match[str] | None, results: list[str]) -> str:
    groups = {str(i): (g or "") for i, g in enumerate(found.groups(), 1)} if found else {}
    text = template.replace("{results}", " | ".join(results))
    return re.sub(r"\{(\d+)\}", lambda m: groups.get(m.group(1), m.group(0)), text)


def render_arguments(value: Any, found: re.Match[str] | None, results: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: render_arguments(v, found, results) for k, v in value.items()}
    if isinstance(value, list):
        return [render_arguments(v, found, results) for v in value]
    if isinstance(value, str):
        number = re.fullmatch(r"\{num:(\d+)\}", value)
        if number and found:
            return json.loads(found.group(int(number.group(1))))
        return render_text(value, found, results)
    return value


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")
