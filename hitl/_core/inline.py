"""A process that serves its own agents, when nothing else does (``HITL_INLINE_WORKER``).

Agno code is one script: it defines an agent, runs it and decides, all in one process, often with
the agent made inside ``main()`` or under ``if __name__ == "__main__":`` where no separate worker
could import it. So by default (``auto``) a script that starts or continues a run of one of its own
agents (defined by the program being run, not imported from a package) on a task queue no worker
polls serves that queue itself, on hitl's loop thread, for as long as it lives; its runs stay
durable (a paused run outlives the process and goes on with the next process or worker that serves
its agent). ``on`` serves any agent in-process; ``off`` never does (then a run no worker takes
comes back with ``waiting_for_worker``). ``auto`` never serves where decisions must be signed (an
agent with a signer, a process trusting decision keys or with ``HITL_DECISION_KEYS``) nor in a
versioned deployment; the decision service never serves runs.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError

from hitl._core import client as _client
from hitl._core import registry
from hitl._core.sync import _background_loop
from hitl.errors import ConfigurationError
from hitl.security import signing
from hitl.settings import environment

if TYPE_CHECKING:
    from hitl.agent import Agent

log = logging.getLogger("hitl")
MODES = ("auto", "on", "off")
_decided: dict[tuple[str, ...], bool] = {}
"""Per (Temporal connection, task queue): whether this process serves it."""
_workers: dict[tuple[str, ...], Any] = {}
_lock = threading.Lock()
_exit_hook = False


_disabled = False


def disable() -> None:
    """Never serve runs in this process, whatever the environment says (the decision service calls it:
    a process that answers HTTP must not run tools)."""
    global _disabled
    _disabled = True


def mode() -> str:
    """``HITL_INLINE_WORKER``: auto (default), on or off.

    Raises:
        ConfigurationError: another value.
    """
    if _disabled:
        return "off"
    env = environment()
    raw = env.inline_worker.strip().lower()
    aliases = {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}
    value = aliases.get(raw, raw)
    if value not in MODES:
        raise ConfigurationError(f"HITL_INLINE_WORKER={raw!r}: expected auto, on or off")
    if value == "auto" and (env.decision_keys or env.deployment_name):
        return "off"
    return value


_worker_queues: set[str] = set()
"""Task queues a worker of this process polls (``hitl.worker.create_worker`` notes them)."""


def note_worker(task_queue: str) -> None:
    """A worker of this process serves ``task_queue``: it is never served a second time here."""
    _worker_queues.add(task_queue)


def _serves(agent: Agent, how: str) -> bool:
    """Whether this process may serve ``agent`` in mode ``how``.

    ``auto`` is for a script's own agents only: an agent defined by the program being run (``python
    script.py``, its ``main()`` included), never one imported from a package, which is how production
    code defines them. And never where decisions must be signed: an agent with a ``signer=``, or a
    process that trusts decision keys (a worker started here would take unsigned decisions).
    """

    if how == "off" or agent.task_queue in _worker_queues:
        return False
    if how == "on":
        return True
    return agent._module == "__main__" and agent.signer is None and not signing.trusted()


async def ensure_served(agent: Agent) -> None:
    """Serve ``agent``'s task queue in this process if the mode says so (see the module's docs)."""
    how = mode()
    if not _serves(agent, how):
        return
    key = (*agent._settings.connection_key(), agent.task_queue)
    if key in _decided:
        return
    await _on_hitl_loop(_once(agent, key, how))


async def serve_now(agent: Agent) -> bool:
    """A run of ``agent`` waits for a worker although the queue looked polled (a worker that has since
    gone): serve it here, unless the mode is off. True when this process serves it now."""
    how = mode()
    if not _serves(agent, how):
        return False
    key = (*agent._settings.connection_key(), agent.task_queue)
    if _decided.get(key):
        return False  # already served here: waiting for something else
    if how == "auto" and await _on_hitl_loop(_live_pollers(agent)):
        return False  # a worker polls: the run waits for something else (a failing task), not for a worker
    _decided.pop(key, None)
    _deciding.pop(key, None)
    await _on_hitl_loop(_once(agent, key, "on"))
    return True


async def _live_pollers(agent: Agent) -> bool:

    return await polled(await _client.connect(agent._settings), agent.task_queue)


async def _on_hitl_loop(coro: Any) -> Any:

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, _background_loop()))


_deciding: dict[tuple[str, ...], asyncio.Future[None]] = {}


async def _once(agent: Agent, key: tuple[str, ...], how: str) -> None:
    """One decision per queue, however many calls ask at once (all on hitl's loop thread)."""
    if key not in _deciding:
        _deciding[key] = asyncio.ensure_future(_decide_and_serve(agent, key, how))
    try:
        await asyncio.shield(_deciding[key])
    except BaseException:
        _deciding.pop(key, None)  # another call tries again
        raise


async def _decide_and_serve(agent: Agent, key: tuple[str, ...], how: str) -> None:

    # The one call from the client core up to the worker room: a process serving its own agents builds a
    # worker as `hitl worker` would. Looked up when needed, so the core never imports the worker room (the
    # layers contract in pyproject.toml names this exception).
    create_worker = importlib.import_module("hitl.worker").create_worker
    client = await _client.connect(agent._settings)
    queue = agent.task_queue
    if how == "auto" and await polled(client, queue):
        _decided[key] = False
        return
    _decided[key] = True
    worker = create_worker(client, queue, max_cached_workflows=200, inline=True)
    task = asyncio.ensure_future(worker.run())
    _workers[key] = (worker, task)
    await asyncio.sleep(0)  # the worker's pollers start now: the run about to start finds them
    log.warning("no worker polls task queue %r: this process serves agent %r while it runs "
                "(HITL_INLINE_WORKER=off to leave runs to workers; `hitl worker --agents <module>` runs one)",
                queue, agent.name)
    global _exit_hook
    with _lock:
        if not _exit_hook:
            _exit_hook = True
            # Before the interpreter shuts thread pools down (the worker's workflow executor among them):
            # threading's exit hooks run before atexit's, the last registered first.
            threading._register_atexit(_stop_all)  # type: ignore[attr-defined]  # private, not in typeshed


def served_here(queue: str) -> bool:
    """Whether a worker of this process serves ``queue`` (one made by ``create_worker``, or in-process)."""
    return queue in _worker_queues or any(served and key[-1] == queue for key, served in _decided.items())


async def polled(client: Any, queue: str) -> bool:
    """Whether a live worker polls ``queue``, as the server sees it (True when it cannot tell)."""
    try:
        info = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
    except RPCError:
        return True  # cannot tell: leave it to workers, as before
    return any(not _dead_local(p.identity) for p in info.pollers)


def _dead_local(identity: str) -> bool:
    """A poller the server still lists (for a minute or so) from a process of this machine that has
    exited, by the SDK's default identity ``<pid>@<host>``: a script run again finds its last run's."""
    pid, _, host = identity.partition("@")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def serving(agent: Agent) -> bool:
    """Whether this process serves ``agent``'s task queue."""
    return bool(_decided.get((*agent._settings.connection_key(), agent.task_queue)))


def _stop_all() -> None:
    """Shut the in-process workers down before hitl's loop stops (atexit runs this first: registered later)."""

    async def stop() -> None:
        for worker, task in list(_workers.values()):
            try:
                await asyncio.wait_for(worker.shutdown(), timeout=5)
            except Exception as exc:  # noqa: BLE001 - the process is exiting: say so and go on
                log.debug("in-process worker shutdown: %s", exc)
            task.cancel()
        _workers.clear()

        for agent in registry.known():  # the pools the mirror opened on this loop, closed while it runs
            for db in {id(d): d for d in [agent.db, *(m.db for m in getattr(agent, "members", {}).values())]
                       if d is not None}.values():
                try:
                    await db.aclose()
                except Exception as exc:  # noqa: BLE001 - exiting
                    log.debug("closing %s: %s", db, exc)

    try:
        asyncio.run_coroutine_threadsafe(stop(), _background_loop()).result(timeout=10)
    except Exception as exc:  # noqa: BLE001
        log.debug("in-process workers not stopped cleanly: %s", exc)
