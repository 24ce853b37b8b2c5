"""What a run's tools may read of their caller (``run_context``), kept in the process that started the run.

``dependencies`` given to ``run``/``continue_run`` can hold credentials (Agno's examples pass a bearer
token), and nothing secret may reach a run's history: so they never travel through Temporal. They
stay here, by run id, for the tools that run in this process (the in-process worker, see
``hitl._core.inline``); a tool that runs on another worker sees the agent's own ``dependencies=`` only.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from hitl._wire import member_slug
from hitl.run.base import RunContext

__all__ = ["member_slug", "member_of", "lookup", "remember", "resolve"]

_MAX = 10_000
_contexts: OrderedDict[str, RunContext] = OrderedDict()
_lock = threading.Lock()


def remember(context: RunContext) -> None:
    """Keep what ``context`` carries for the run's tools (the newest call's dependencies win)."""
    with _lock:
        known = _contexts.pop(context.run_id, None)
        if known is not None and context.dependencies is None:
            context = replace(context, dependencies=known.dependencies)
        if known is not None and not context.extra:
            context = replace(context, extra=known.extra)
        _contexts[context.run_id] = context
        while len(_contexts) > _MAX:
            _contexts.popitem(last=False)


_MEMBER_RUN = re.compile(r"(?P<slug>[A-Za-z0-9_-]+)\.[0-9]+-[A-Za-z0-9_.:-]+")


def member_of(owner: str, run_id: str, slugs: Iterable[str]) -> str | None:
    """The member slug when ``run_id`` is a run of one of ``owner``'s members (``<owner>.<slug>.<n>-<call>``),
    else None: an id that merely starts with the team's is no member's (run ids are chosen by callers)."""
    if not run_id.startswith(owner + "."):
        return None
    found = _MEMBER_RUN.fullmatch(run_id[len(owner) + 1:])
    return found["slug"] if found is not None and found["slug"] in set(slugs) else None


def lookup(run_id: str) -> RunContext | None:
    """The context kept for ``run_id``, or for the team run whose member's run it is."""
    with _lock:
        found = _contexts.get(run_id)
        if found is None:
            owners = [rid for rid, c in _contexts.items() if member_of(rid, run_id, c.extra.get("members", ()))]
            found = _contexts[max(owners, key=len)] if owners else None
    return replace(found, run_id=run_id) if found is not None else None


def resolve(dependencies: dict[str, Any] | None, **offered: Any) -> dict[str, Any] | None:
    """Agno's dependencies: a callable value is called (with the arguments it names) once per run."""
    import inspect

    if not dependencies:
        return dependencies
    out: dict[str, Any] = {}
    for key, value in dependencies.items():
        if callable(value):
            params = inspect.signature(value).parameters
            value = value(**{k: v for k, v in offered.items() if k in params})
        out[key] = value
    return out
