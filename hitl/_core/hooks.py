"""Agno's pre- and post-hooks: plain callables, called in the caller's process with the arguments they name."""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from hitl.exceptions import InputCheckError, OutputCheckError
from hitl.run.base import RunContext

if TYPE_CHECKING:
    from hitl.agent import Agent
    from hitl.run import RunOutput

log = logging.getLogger("hitl")


@dataclass
class RunInputView:
    """What a pre-hook sees of the run about to start (``run_input``); it may change ``input_content``."""

    input_content: str


async def run_pre_hooks(agent: Agent, message: str, *, user_id: str | None, metadata: dict[str, Any] | None,
                        debug_mode: bool) -> str:
    """The message the run starts with, after the agent's pre-hooks saw (and maybe changed) it."""
    if not agent.pre_hooks:
        return message
    run_input = RunInputView(input_content=message)
    offered = {"run_input": run_input, "user_id": user_id, "metadata": metadata, "debug_mode": debug_mode,
               "session": None, "run_context": RunContext(run_id="", user_id=user_id, metadata=metadata),
               **_self(agent)}
    for hook in agent.pre_hooks:
        await _call(hook, offered, "pre-hook")
    if not isinstance(run_input.input_content, str):
        raise TypeError(f"a pre-hook of {agent.name!r} set run_input.input_content to a "
                        f"{type(run_input.input_content).__name__}; the message is text")
    return run_input.input_content


async def run_post_hooks(agent: Agent, output: RunOutput, *, user_id: str | None, metadata: dict[str, Any] | None,
                         debug_mode: bool) -> None:
    """Call the agent's post-hooks on a run this call saw complete."""
    if not agent.post_hooks:
        return
    offered = {"run_output": output, "user_id": user_id, "metadata": metadata, "debug_mode": debug_mode,
               "session": None, "run_context": RunContext(run_id=output.run_id, session_id=output.session_id,
                                                          user_id=user_id, metadata=metadata),
               **_self(agent)}
    for hook in agent.post_hooks:
        await _call(hook, offered, "post-hook")


def _self(agent: Agent) -> dict[str, Any]:
    return {"team": agent} if agent.is_team else {"agent": agent}


async def _call(hook: Callable[..., Any], offered: dict[str, Any], what: str) -> None:
    try:
        params = inspect.signature(hook).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            kwargs = dict(offered)
        else:
            kwargs = {name: offered[name] for name in params if name in offered}
        result = hook(**kwargs)
        if inspect.isawaitable(result):
            await result
    except (InputCheckError, OutputCheckError):
        raise  # a guardrail: it stops the run (hitl.exceptions)
    except Exception as exc:  # noqa: BLE001 - Agno logs a failing hook and goes on; so does hitl
        log.error("%s %s failed: %s: %s", what, getattr(hook, "__qualname__", hook), type(exc).__name__, exc)


class _DebugHandler(logging.StreamHandler[TextIO]):
    """``debug_logging``'s handler, known by its mark."""

    _hitl_debug = True


def debug_logging() -> None:
    """``debug_mode=True``: hitl's logger at DEBUG, to stderr (once)."""
    logger = logging.getLogger("hitl")
    logger.setLevel(logging.DEBUG)
    if not any(getattr(h, "_hitl_debug", False) for h in logger.handlers):
        handler = _DebugHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("DEBUG %(message)s"))
        logger.addHandler(handler)


__all__ = ["RunInputView", "run_pre_hooks", "run_post_hooks", "debug_logging"]
