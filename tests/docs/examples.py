"""The code examples of the manual (docs/**/*.md and README.md), as the tests run them.

A fenced ``python``, ``bash`` or ``sql`` block is an example. By default it runs:

- ``python``: the page's Python blocks, in order, as one script (a later block may use what an
  earlier one defined), against the real stack: Temporal, PostgreSQL, the scripted model.
- ``bash``: each block alone, with ``bash -euo pipefail``, against the same stack plus a running
  decision service and a fresh paused run: ``$HITL_URL``, ``$HITL_TOKEN`` (``$TOKEN``), ``$RUN_ID``,
  ``$REQUIREMENT_ID``, ``$APPROVAL_ID``.
- ``sql``: each statement, against the approvals the page's Python examples left in PostgreSQL.

An HTML comment on the line before the fence (invisible on the site) changes that:

- ``<!-- example: check -->``: the block starts servers or needs what this machine cannot give
  (a Docker engine, Temporal Cloud): each ``hitl`` and ``temporal`` command in it is parsed by the
  command itself (an unknown command or option fails), each other program must be one of
  :data:`PROGRAMS_CHECKED_ELSEWHERE`, and each repository file it names must exist.
- ``<!-- example: pytest -->`` before a ``python`` block: a test module of a user's project, run by
  pytest in a folder of its own with hitl's plugin (its ``hitl_*`` fixtures) and the page's
  ``pyproject.toml`` settings; every test in it must pass.
- ``<!-- example: output -->`` before a ``text`` block: what the page's Python examples print.
  Each of its lines must be a line of their output, ``…`` standing for any text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_LANGUAGES = ("python", "bash", "sql")
MODES = ("run", "check", "output", "pytest")
# Programs a `check` example may name that these tests cannot run here, with where they are checked.
PROGRAMS_CHECKED_ELSEWHERE = {
    "docker": "no Docker engine on CI: the image and compose file are checked by tests/worker/test_image.py and test_packaging.py",
    "tcld": "Temporal Cloud's CLI, for a Cloud namespace; the attributes it adds are the ones tests/worker/test_packaging.py checks",
    "pip": "installs from an index; tests/worker/test_image.py installs hitl's wheel with its extras",
    "uv": "compiles requirements/*.txt; tests/worker/test_image.py checks the locks",
    "sudo": "file ownership on the host, for the image's user",
    "cp": "copies a file of the repository (checked to exist)",
    "mkdir": "makes a folder",
    "jq": "reads the --json output, whose shape tests/service checks",
    "curl": "a stream that stays open (GET /approvals/events); tests/service/test_event_streams.py reads it",
}


@dataclass(frozen=True)
class Example:
    page: str  # relative to the repository, e.g. docs/guides/cli.md
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    mode: str  # "run", "check" or "output"

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


_DIRECTIVE = re.compile(r"^<!--\s*example:\s*(\w+)\s*-->\s*$")


def examples_of(path: Path) -> list[Example]:
    lines = path.read_text().split("\n")
    found: list[Example] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            language = line[3:].strip().split(" ")[0].split("{")[0]
            start = i
            i += 1
            body: list[str] = []
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            directive = _DIRECTIVE.match(lines[start - 1]) if start else None
            mode = directive.group(1) if directive else "run"
            if mode not in MODES:  # a misspelt directive must not leave its block unrun
                raise ValueError(f"{path}:{start}: unknown directive 'example: {mode}' (known: {', '.join(MODES)})")
            if mode == "output":
                found.append(Example(str(path.relative_to(ROOT)), start + 1, "output", "\n".join(body), mode))
            elif language in RUN_LANGUAGES:
                found.append(Example(str(path.relative_to(ROOT)), start + 1, language, "\n".join(body), mode))
        i += 1
    return found


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def all_examples() -> list[Example]:
    return [e for page in pages() for e in examples_of(page)]
