"""Serve agents: ``hitl worker --agents my_pkg.my_module`` (or ``python worker.py`` in a checkout).

Every Agent and Team defined at the top level of those modules is served, each on its task
queue (by default one per agent, so a run reaches only a worker that serves its agent).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from hitl import activities
from hitl._core import client as _client
from hitl._core import inline as _inline
from hitl._core import registry
from hitl.agent import Agent
from hitl.errors import ConfigurationError
from hitl.observability.visibility import register_search_attributes
from hitl.security import links, signing
from hitl.settings import Environment, Settings, environment
from hitl.team import Team
from hitl.tools import reserve_tool_threads
from hitl.worker.versioning import Deployment
from hitl.workflows import AgentRunWorkflow

__all__ = ["agents_in", "create_worker", "serve", "main"]

log = logging.getLogger(__name__)
CACHE_MIB = 100
"""The memory a worker process gives to runs it keeps, unless ``HITL_WORKFLOW_CACHE_MIB`` says otherwise."""
MIB_PER_CACHED_RUN = 0.1
"""What one kept run of an agent costs a worker (measured by ``bench.scale``: about 0.1 MiB with a short
conversation; a long one costs more, and then ``HITL_MAX_CACHED_WORKFLOWS`` sets the count)."""
DEFAULT_TOOL_CONCURRENCY = 64


def agents_in(module_names: Iterable[str]) -> list[Agent]:
    """The Agents (Teams included) defined at the top level of the named modules, named.

    Raises:
        ConfigurationError: a module that cannot be imported, none of them defining an Agent, or
            two different agents under one name.
    """
    found: list[Agent] = []
    for name in module_names:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigurationError(f"cannot import agent module {name!r}: {exc}") from exc
        found.extend(v for v in vars(module).values() if isinstance(v, Agent) and v not in found)
    registry.resolve_names()
    for agent in found:
        agent.name  # noqa: B018 - a default name is read now, while the module is whole
    return found


def _env_int(env: Environment, name: str, default: int) -> int:
    raw = env.named().get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r}: expected a whole number") from None
    if value < 1:
        raise ConfigurationError(f"{name}={raw!r}: expected at least 1")
    return value


def cache_size(env: Environment | None = None) -> int:
    """How many runs a worker process keeps in memory: ``HITL_MAX_CACHED_WORKFLOWS`` if set, else as
    many as ``HITL_WORKFLOW_CACHE_MIB`` (default 100 MiB) holds at :data:`MIB_PER_CACHED_RUN` each:
    1,000 by default, Temporal's own default. ``env``: the variables to read (default: this process's).

    A decision on a run still kept costs its own work; on an evicted one, a replay of its history
    as well (about 11 ms more of worker CPU for an agent's run, measured by ``bench.scale``).

    Raises:
        ConfigurationError: a value that is not a whole number, or below 1.
    """
    env = environment() if env is None else env
    if (env.max_cached_workflows or "").strip():
        return _env_int(env, "HITL_MAX_CACHED_WORKFLOWS", 1)
    return max(1, int(_env_int(env, "HITL_WORKFLOW_CACHE_MIB", CACHE_MIB) / MIB_PER_CACHED_RUN))


def create_worker(
    client: Client, task_queue: str, *, max_cached_workflows: int | None = None, tool_concurrency: int | None = None,
    deployment: Deployment | None = None, inline: bool = False, env: Environment | None = None,
) -> Worker:
    """A worker for the run workflow and its activities on ``task_queue``.

    Args:
        max_cached_workflows: Runs kept in memory (default: :func:`cache_size`); a paused run
            evicted from the cache costs nothing until a decision replays it.
        tool_concurrency: Tool calls run at once, as remote activities and again as local ones
            (default ``HITL_TOOL_CONCURRENCY`` or 64). Each has a thread of its own, so a sync
            tool starts when its activity does and its timeout measures the tool alone.
        deployment: The worker deployment version it belongs to (``hitl.worker.versioning``): its runs are
            pinned to it. None: an unversioned worker.
        inline: Made by ``hitl._core.inline`` for a process serving its own agents.
        env: The variables it reads (``HITL_WORKFLOW_SANDBOX``, the cache's and the tool concurrency's);
            default: this process's environment.
    """
    registry.resolve_names()
    if not inline:
        _inline.note_worker(task_queue)  # this process serves the queue: it never starts an in-process worker too
    env = environment() if env is None else env
    runner = workflow_runner(env)
    if isinstance(runner, SandboxedWorkflowRunner):
        _compile_workflow_modules()  # only the sandbox imports the workflow modules again, for every run
    if max_cached_workflows is None:
        max_cached_workflows = cache_size(env)
    slots = tool_concurrency or _env_int(env, "HITL_TOOL_CONCURRENCY", DEFAULT_TOOL_CONCURRENCY)
    reserve_tool_threads(2 * slots)
    return _Worker(
        client,
        task_queue=task_queue,
        workflows=[AgentRunWorkflow],
        activities=activities.ALL,
        # Every activity is async (no activity_executor); sync tools run on the threads reserved above.
        # Audit and notification activities take remote slots beside the tools.
        max_concurrent_activities=slots + 16,
        max_concurrent_local_activities=slots + 16,
        max_cached_workflows=max_cached_workflows,
        deployment_config=deployment.config() if deployment is not None else None,
        workflow_runner=runner,
    )


class _Worker(Worker):
    """Temporal's worker, which closes the MCP sessions its tool calls opened when it stops."""

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            from hitl.tools.mcp import close_sessions

            await close_sessions()


def workflow_runner(env: Environment | None = None) -> WorkflowRunner:
    """How the run workflow's code runs: directly, or in Temporal's sandbox with ``HITL_WORKFLOW_SANDBOX=1``
    (read from ``env``, default this process's environment).

    The sandbox guards workflow code that users write. The run workflow is hitl's own: its modules
    are passed through the sandbox anyway (re-importing them for every run was most of a worker's
    CPU), so the sandbox re-executed one module per run and checked little else, while entering it
    for every activation and every payload cost 2-3 ms of worker CPU per decided run (about a
    tenth of throughput) and a third of the memory of a kept run (``bench/RESULTS.md``). What
    keeps the code deterministic is the replay test over recorded histories, which replays in the
    sandbox, and the rule that every change to it is patched.

    Raises:
        ConfigurationError: ``HITL_WORKFLOW_SANDBOX`` other than 0 or 1.
    """
    raw = (environment() if env is None else env).workflow_sandbox.strip() or "0"
    if raw not in ("0", "1"):
        raise ConfigurationError(f"HITL_WORKFLOW_SANDBOX={raw!r}: expected 0 or 1")
    return SandboxedWorkflowRunner() if raw == "1" else UnsandboxedWorkflowRunner()


def _compile_workflow_modules() -> None:
    """Write bytecode for the workflow modules, whatever PYTHONDONTWRITEBYTECODE says.

    Temporal's sandbox imports the workflow's module afresh for every run it starts or replays;
    without a .pyc each of those compiles the source again, which dominated a worker's CPU.
    """
    import compileall

    import hitl.workflows as workflows

    for path in workflows.__path__:
        try:
            compileall.compile_dir(path, quiet=2, workers=1)
        except OSError:  # a read-only install: it only costs speed
            pass


def queues_of(agents: Sequence[Agent]) -> dict[str, list[Agent]]:
    """The task queues these agents' runs go to, and who is on each (a team's members run on its queue)."""
    queues: dict[str, list[Agent]] = {}
    for agent in agents:
        queues.setdefault(agent.task_queue, []).append(agent)
        if isinstance(agent, Team):
            queues[agent.task_queue].extend(m for m in agent.members.values() if m not in queues[agent.task_queue])
    return queues


async def serve(module_names: Sequence[str], settings: Settings, *, ready: asyncio.Event | None = None) -> None:
    """Serve the modules' agents until SIGINT or SIGTERM.

    Raises:
        ConfigurationError: no Agent in the modules, an agent module that cannot be imported, a bad
            ``HITL_LINK_TTL``.
        TemporalUnavailableError: Temporal cannot be reached at the configured address.
    """
    agents = agents_in(module_names)
    if not agents:
        raise ConfigurationError(f"no Agent is defined at the top level of {list(module_names)}")
    if decision_keys := environment().decision_keys:  # strict: only decisions signed by these keys
        keys = signing.load_jwks(decision_keys)
        signing.trust(keys)
        log.info("strict: decisions must be signed by one of %s", sorted(keys))
    # Read now, so a bad HITL_LINK_TTL stops the worker at start, not every notification later.
    if links.settings().enabled:
        log.info("notifications carry one-click links to %s", links.settings().public_url)
    deployment = Deployment.from_env()
    if deployment is not None:
        log.info("worker deployment version %s: runs started here stay on it until asked to upgrade", deployment)
    client = await _client.connect(settings)
    await register_search_attributes(client)
    queues = queues_of(agents)
    # The cache is shared out: one worker per queue, each with its own.
    cache = max(50, cache_size() // len(queues))
    workers = [create_worker(client, q, max_cached_workflows=cache, deployment=deployment) for q in sorted(queues)]
    for queue, served in sorted(queues.items()):
        log.info("serving %s on task queue %r at %s", [a.name for a in served], queue, settings.temporal_address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        for w in workers:
            await stack.enter_async_context(w)
        print("worker ready", flush=True)
        if ready is not None:
            ready.set()
        await stop.wait()
