"""What hitl refuses at the edge, so that no input can make Temporal terminate a run or poison its audit trail.

Temporal refuses a payload over 2 MB and a gRPC message over 4 MB, and a workflow task whose
result is too large gets the run terminated; PostgreSQL text cannot hold NUL. hitl keeps every
input well below the first and refuses the second, with an error that names the limit:

========================  ==========  =====================================================
limit                     value       what it bounds
========================  ==========  =====================================================
``MAX_DECISION_BYTES``    256 KiB     one decision (edited arguments, input, external result, reason), as JSON
``MAX_REQUEST_BYTES``     1 MiB       one ``continue_run`` call, all its decisions together
``MAX_OUTPUT_BYTES``      1 MiB       a run's ``RunOutput``: a decision that would grow it past this is refused
``MAX_MESSAGE_BYTES``     256 KiB     the message a run starts with
``MAX_MODEL_TURN_BYTES``  512 KiB     one answer of the model (its text and its tool calls)
``MAX_TOOL_OUTPUT_CHARS`` 64,000      a tool's output, cut there with a note the model reads
``MAX_ID_CHARS``          255         run, session and user ids (they are indexed in PostgreSQL)
``MAX_JSON_DEPTH``        128         how deeply a decision's JSON nests
========================  ==========  =====================================================

These are constants, not settings: the run workflow checks decisions against them, and a
history must replay to the same answer on every worker. Raising one is a workflow change.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "MAX_DECISION_BYTES", "MAX_REQUEST_BYTES", "MAX_OUTPUT_BYTES", "MAX_MESSAGE_BYTES", "MAX_MODEL_TURN_BYTES",
    "MAX_TOOL_OUTPUT_CHARS", "MAX_ID_CHARS", "MAX_JSON_DEPTH", "json_bytes", "depth", "unstorable", "storable", "size",
]

KiB = 1024
MAX_DECISION_BYTES = 256 * KiB
MAX_REQUEST_BYTES = 1024 * KiB
MAX_OUTPUT_BYTES = 1024 * KiB
MAX_MESSAGE_BYTES = 256 * KiB
MAX_MODEL_TURN_BYTES = 512 * KiB
MAX_TOOL_OUTPUT_CHARS = 64_000
MAX_ID_CHARS = 255
MAX_JSON_DEPTH = 128
"""How deeply a decision's JSON may nest (edited arguments, input, a result), checked where decisions enter
(the Python API, the service): Temporal's JSON decoding stops near 200 levels and pydantic's encoding near
255, so deeper values would fail somewhere along the way instead of being refused with a reason."""


def json_bytes(value: Any) -> int:
    """The size of ``value`` as compact UTF-8 JSON: what the limits measure (stable across versions)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return len(text.encode("utf-8", "surrogatepass"))


def depth(value: Any) -> int:
    """How many levels of lists and objects ``value`` nests (a scalar: 0); iterative, so any depth is measured."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        stack.extend((child, level + 1) for child in children)
    return deepest


def size(n: int) -> str:
    """A byte count for people: ``1.4 MiB``, ``256 KiB``, ``12 bytes``."""
    if n >= 1024 * KiB:
        return f"{n / (1024 * KiB):.1f} MiB"
    if n >= KiB:
        return f"{n / KiB:.0f} KiB" if n % KiB == 0 else f"{n / KiB:.1f} KiB"
    return f"{n} bytes"


def _problem(text: str) -> str | None:
    if "\x00" in text:
        return f"a NUL character (at {text.index(chr(0))})"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"an unpaired surrogate (at {exc.start})"
    return None


def unstorable(value: Any, where: str = "") -> str | None:
    """Where ``value`` holds text PostgreSQL cannot store (NUL) or UTF-8 cannot encode, or None.

    Looks into dict keys and values and list items: ``arguments.note: a NUL character (at 3)``.
    """
    if isinstance(value, str):
        problem = _problem(value)
        return f"{where or 'the value'}: {problem}" if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and (problem := _problem(key)):
                return f"{here} (a key): {problem}"
            if found := unstorable(item, here):
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if found := unstorable(item, f"{where}[{i}]"):
                return found
    return None


def storable(text: str) -> str:
    """Text as it can be stored: NUL and unpaired surrogates become U+FFFD.

    For what hitl cannot refuse (a tool's output, a model's text): history, the model and the
    audit trail then all hold the same text.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return text
