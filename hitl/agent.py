"""``Agent``: an LLM with tools whose every run is a durable Temporal workflow."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import marshal
import sys
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, TypedDict

import pydantic
from temporalio.client import Client

from hitl._core import client as _client
from hitl._core import context as _context
from hitl._core import continuing, inline, registry
from hitl._core import hooks as _hooks
from hitl._core import listing as _listing
from hitl._core import records as _records
from hitl._core import runs as _runs
from hitl._core import sessions as _sessions
from hitl._core import stream as _stream
from hitl._core.sync import run_sync
from hitl._wire import RunInput
from hitl.db.postgres import PostgresDb
from hitl.decisions import ChangeApproval, Decision
from hitl.errors import ConfigurationError, InvalidDecisionError
from hitl.exceptions import InputCheckError, OutputCheckError
from hitl.models.openai import OpenAIChat, OpenAIModel
from hitl.notify import Notifier
from hitl.observability.visibility import register_search_attributes
from hitl.policy import ApprovalRule
from hitl.run import RunOutput, RunRequirement, RunStatus, RunSummary
from hitl.run import agent as agent_events
from hitl.run import team as team_events
from hitl.run._events import entity_id, events_for
from hitl.run._printing import aprint_run_stream, print_run
from hitl.run.base import RunContext
from hitl.security.signing import Signer
from hitl.settings import Settings
from hitl.tools import Tool, Toolkit, expand_tools
from hitl.tools.mcp import MCPTools

__all__ = ["Agent"]

_log = logging.getLogger("hitl")


class _Overrides(TypedDict):
    """The connection settings an Agent was given (None: the environment's, read at use)."""

    temporal_address: str | None
    namespace: str | None
    task_queue: str | None


class Agent:
    """An agent whose runs survive crashes and wait for people.

    Args:
        model: ``OpenAIChat`` or ``OpenAIResponses`` (default ``OpenAIChat("gpt-4o")``).
        name: The name its runs are bound to, stable across deploys. Defaults to where it is
            defined: ``<module>.<variable>`` (``examples.quickstart.agent``), read once the module
            has run; set it when the agent may move, or is not bound at a module's top level.
        tools: Tools (``@tool``) or plain functions.
        db: Where approvals are recorded (``PostgresDb``).
        instructions: The system prompt; a list is joined by newlines.
        role: What the agent does, for teams.
        task_queue: The Temporal task queue its runs go to. By default each agent has its own,
            ``<TEMPORAL_TASK_QUEUE or hitl-agents>.<name>``, so a run only ever reaches a worker
            that serves its agent; a queue given here may be shared with other agents, and every
            worker polling it must serve them all (one that does not leaves the run to one that does).
        temporal_address, namespace: Override ``TEMPORAL_ADDRESS`` and ``TEMPORAL_NAMESPACE``.
        client: A connected Temporal client to use instead of connecting (it must use the
            pydantic data converter); async calls then run on its event loop.
        notifiers: Told when an approval is requested, reminded, escalated or expires
            (``hitl.notify.WebhookNotifier`` or any async callable); they run in the worker.
        approval_rules: Gate tools that carry no ``@approval`` by name or by a predicate over
            their arguments (``hitl.policy.ApprovalRule``); evaluated in the worker.
        history_event_limit: Continue-as-new past this many history events.
        signer: Signs this process's decisions and approval changes (``hitl.security.signing``), for runs
            whose workers are strict (they trust its public key).
        description, expected_output: Put in the system message (first, and last), as Agno does.
        markdown: Ask the model to format its answers in markdown; also ``print_response``'s default.
        pre_hooks, post_hooks: Called in this process with the arguments they name (Agno's binding):
            pre-hooks before a run starts (``run_input``, ``agent``, ``user_id``, ``metadata``...),
            post-hooks when a ``run``/``continue_run`` call sees its run complete (``run_output``,
            ``agent``, ``user_id``, ``metadata``...). An exception is logged, not raised.
        debug_mode: Log hitl's steps at DEBUG level to stderr.
        telemetry: Accepted for Agno code; hitl sends no telemetry, so it changes nothing.
        session_id, user_id: Used by runs that give none. A run without a session gets one, kept
            here for the next runs (Agno's sticky session), when the agent keeps sessions.
        session_state: The session's initial state (needs ``db``): tools that declare
            ``run_context`` read and change ``run_context.session_state`` (kept in PostgreSQL), and
            ``{key}`` in the instructions is filled from it. ``get_session_state()`` reads it.
        dependencies: Values for the tools' ``run_context.dependencies`` (a callable is called per
            run). Those given to ``run``/``continue_run`` never travel through Temporal: they reach
            tools that run in this process only (see ``hitl._core.context``).
        add_history_to_context, num_history_runs, num_history_messages: Put the session's last
            completed runs (3 by default) before the message (needs ``db``).

    Raises:
        ConfigurationError: two tools with one name, a model of an unknown kind, or a ``name``
            already given to a different agent.
    """

    is_team: ClassVar[bool] = False
    """Whether this is a :class:`hitl.team.Team` (for code below the public classes, which cannot import them)."""

    def __init__(
        self,
        model: OpenAIModel | None = None,
        *,
        name: str | None = None,
        tools: Sequence[Tool | Toolkit | Callable[..., Any]] | None = None,
        db: PostgresDb | None = None,
        instructions: str | Sequence[str] | None = None,
        role: str | None = None,
        description: str | None = None,
        task_queue: str | None = None,
        temporal_address: str | None = None,
        namespace: str | None = None,
        history_event_limit: int = 10_000,
        client: Client | None = None,
        notifiers: Sequence[Notifier] | None = None,
        approval_rules: Sequence[ApprovalRule] | None = None,
        signer: Signer | None = None,
        markdown: bool = False,
        expected_output: str | None = None,
        pre_hooks: Sequence[Callable[..., Any]] | None = None,
        post_hooks: Sequence[Callable[..., Any]] | None = None,
        debug_mode: bool = False,
        telemetry: bool = True,
        session_id: str | None = None,
        user_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        dependencies: dict[str, Any] | None = None,
        add_history_to_context: bool = False,
        num_history_runs: int | None = None,
        num_history_messages: int | None = None,
    ) -> None:
        del telemetry  # Agno's anonymous usage ping: hitl sends nothing anywhere, so there is nothing to turn off
        if num_history_runs is not None and num_history_messages is not None:
            raise ConfigurationError(f"Agent {name or ''}: give num_history_runs or num_history_messages, not both")
        for what, n in (("num_history_runs", num_history_runs), ("num_history_messages", num_history_messages)):
            if n is not None and (not isinstance(n, int) or n < 0):
                raise ConfigurationError(f"Agent {name or ''}: {what}={n!r} is not a whole number of at least 0")
        if session_state is not None and not isinstance(session_state, dict):
            raise ConfigurationError(f"Agent {name or ''}: session_state must be a dict, got {type(session_state).__name__}")
        if dependencies is not None and not isinstance(dependencies, dict):
            raise ConfigurationError(f"Agent {name or ''}: dependencies must be a dict, got {type(dependencies).__name__}")
        self.model = model if model is not None else OpenAIChat(id="gpt-4o")
        if not isinstance(self.model, OpenAIModel):
            raise ConfigurationError(f"Agent model must be OpenAIChat or OpenAIResponses, got {type(model).__name__}")
        self.tools: dict[str, Tool] = {}
        # Toolkits' instructions go in the system message when they ask to (Agno's add_instructions).
        self.tool_instructions = [t.instructions for t in tools or [] if isinstance(t, Toolkit)
                                  and t.instructions and getattr(t, "add_instructions", False)]
        for made in expand_tools(tools or []):
            if made.name in self.tools:
                raise ConfigurationError(f"Agent {name or ''}: two tools are named {made.name!r}")
            self.tools[made.name] = made
        # MCP servers' tools are listed when a run first calls its model, and recorded (hitl.tools.mcp).
        self.mcp_toolsets: dict[str, MCPTools] = {}
        for toolset in tools or []:
            if isinstance(toolset, MCPTools):
                if toolset.name in self.mcp_toolsets:
                    raise ConfigurationError(f"Agent {name or ''}: two MCP servers are named {toolset.name!r}; "
                                             "give each MCPTools its own name=")
                self.mcp_toolsets[toolset.name] = toolset
        if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 200):
            raise ConfigurationError(f"Agent name {name!r}: give a non-empty name of at most 200 characters")
        self.instructions = instructions if isinstance(instructions, str) or instructions is None else "\n".join(instructions)
        self.role = role
        self.description = description
        self.markdown = bool(markdown)
        self.expected_output = expected_output
        self.pre_hooks: list[Callable[..., Any]] = list(pre_hooks or [])
        self.post_hooks: list[Callable[..., Any]] = list(post_hooks or [])
        self.debug_mode = bool(debug_mode)
        self.session_id = session_id
        self.user_id = user_id
        self.session_state = session_state
        self.dependencies = dependencies
        self.add_history_to_context = bool(add_history_to_context)
        self.num_history_runs = num_history_runs
        self.num_history_messages = num_history_messages
        self.db = db
        self.history_event_limit = history_event_limit
        self.notifiers: list[Notifier] = list(notifiers or [])
        self.approval_rules: list[ApprovalRule] = list(approval_rules or [])
        self.signer = signer
        self._name = name
        self.has_explicit_name = name is not None
        self._module, self.defined_in, self._made_in = _caller()
        self._temporal_client = client
        self._overrides: _Overrides = {"temporal_address": temporal_address, "namespace": namespace, "task_queue": task_queue}
        if task_queue is not None and (not task_queue.strip() or len(task_queue) > 900):
            raise ConfigurationError(f"Agent task_queue {task_queue!r}: give a non-empty name of at most 900 characters")
        registry.register(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name or '(unnamed)'!r}, tools={list(self.tools)})"

    @property
    def name(self) -> str:
        """The name its runs are bound to: the one given, or ``<module>.<variable>`` where it is defined."""
        if self._name is None:
            self._name = self._default_name()
        return self._name

    def _default_name(self) -> str:
        # Where it is defined, not what it is: a redeploy that changes instructions, tools or
        # model keeps the name, and paused runs go on with the new definition.
        bound = self._top_level_name()
        if bound is not None:
            return bound
        # Made in a function, or an earlier binding replaced: the agent of its module it is the same
        # as (Agno scripts make their agent again in main()), so a worker that imported the module serves it.
        same = sorted({name for other in registry.known() if other is not self and type(other) is type(self)
                       and other.defined_in == self.defined_in and (name := other._top_level_name()) is not None
                       and other.definition() == self.definition()})
        if len(same) > 1:
            raise ConfigurationError(
                f"{type(self).__name__} made in {self.defined_in}.{self._made_in} is the same as several agents of its "
                f"module ({', '.join(same)}): a run is bound to one name, so give it name=")
        if same:
            return same[0]
        # Nothing to match: named after the function that made it (served by this process, see hitl._core.inline).
        return f"{self.defined_in}.{self._made_in}.{type(self).__name__}"

    def _top_level_name(self) -> str | None:
        """``<module>.<variable>`` when bound at the top level of its module (or the name given), else None."""
        if self.has_explicit_name:
            return self._name
        module = sys.modules.get(self._module)
        for variable, value in (vars(module) if module is not None else {}).items():
            if value is self:
                return f"{self.defined_in}.{variable}"
        return None

    @property
    def system_message(self) -> str | None:
        """What the model is told first: the description, the instructions, the expected output and
        the markdown request, in Agno's order (None when there is nothing to say)."""
        parts = [self.description or "", self.instructions or "", *self.tool_instructions]
        if self.expected_output:
            parts.append(f"<expected_output>\n{self.expected_output}\n</expected_output>")
        if self.markdown:
            parts.append("Use markdown to format your answers.")
        text = "\n\n".join(p for p in parts if p)
        return text or None

    def definition(self) -> str:
        """A digest of what the agent does: two agents under one name must have the same one."""
        model = self.model
        parts = [type(self).__name__, type(model).__name__, model.id, model.api, str(model.base_url),
                 str(model.temperature), self.instructions or "", self.role or "", self.description or "",
                 repr((self.db.approvals_table, self.db._db_url) if self.db is not None else None),
                 str(self.history_event_limit), repr(self._overrides.get("task_queue")),
                 repr((self.markdown, self.expected_output, self.tool_instructions, self.add_history_to_context, self.num_history_runs,
                       self.num_history_messages, sorted(self.session_state or {})))]
        parts += [_tool_digest(t) for t in self.tools.values()]
        parts += [t.config_digest() for t in self.mcp_toolsets.values()]
        parts += [repr(sorted(r.tools) if r.tools is not None else None) + _code_digest(r.when) +
                  (r.policy.model_dump_json() if r.policy is not None else "") for r in self.approval_rules]
        parts += [type(n).__qualname__ + _code_digest(n) for n in self.notifiers]
        return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def _settings(self) -> Settings:
        # Read at use, not at definition: modules defining agents are often imported before
        # the environment is set (test collection, worker start-up).
        return Settings.from_env(**self._overrides)

    @property
    def task_queue(self) -> str:
        """Where its runs go: the ``task_queue=`` given, else this agent's own queue (see the class docs)."""
        explicit = self._overrides.get("task_queue")
        if explicit:
            return explicit
        return f"{self._settings.task_queue}.{self.name}"

    async def _connect(self) -> Client:
        return self._temporal_client or await _client.connect(self._settings)

    # ------------------------------------------------------------------ async API
    def arun(
        self,
        message: str,
        *,
        stream: bool = False,
        stream_events: bool = False,
        run_id: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        debug_mode: bool | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> Any:
        """Start a run; return when it completes, fails or first pauses.

        Awaited, it gives the :class:`RunOutput`. With ``stream=True`` it is an async iterator
        of Agno's run events instead (``hitl.run.agent``; ``stream_events=True`` for all of them,
        else the content and a pause), ending with the run's first pause or its end.
        """
        run_id = run_id or _runs.new_run_id()
        call = self._astart(message, run_id=run_id, session_id=session_id, user_id=user_id, metadata=metadata,
                            debug_mode=debug_mode, dependencies=dependencies)
        return self._astream(call, run_id, continued=False, stream_events=stream_events) if stream else call

    async def _astart(self, message: str, *, run_id: str | None, session_id: str | None, user_id: str | None,
                      metadata: dict[str, Any] | None, debug_mode: bool | None,
                      dependencies: dict[str, Any] | None = None) -> RunOutput:
        debug = self._debug(debug_mode)
        user_id = user_id or self.user_id
        session_id = session_id or self.session_id
        if session_id is None and _sessions.keeps_sessions(self):
            session_id = self.session_id = str(uuid.uuid4())  # Agno's sticky session
        rid = run_id or _runs.new_run_id()
        try:
            message = await _hooks.run_pre_hooks(self, message, user_id=user_id, metadata=metadata, debug_mode=debug)
        except InputCheckError as exc:  # a guardrail refused the input: the run never starts (as Agno's)
            _log.error("%s: run %s refused by a pre-hook: %s (%s)", self.name, rid, exc, exc.error_id)
            return RunOutput(run_id=rid, agent_name=self.name, session_id=session_id, status=RunStatus.error,
                             content=str(exc), error=str(exc))
        client = await self._connect()
        await inline.ensure_served(self)
        _context.remember(RunContext(run_id=rid, session_id=session_id, user_id=user_id, metadata=metadata,
                                     dependencies=_context.resolve(dependencies, agent=self), extra=self._members_extra()))
        run_input = RunInput(
            agent_name=self.name,
            message=message,
            session_id=session_id,
            user_id=user_id,
            history_event_limit=self.history_event_limit,
            audit=self.db is not None,
            notify=bool(self.notifiers),
            search_attributes=await register_search_attributes(client),
            history=await _sessions.history(self, run_id=rid, session_id=session_id, message=message),
        )
        if debug:
            _log.debug("%s: run %s starts: %r", self.name, rid, message[:200])
        output = await _runs.start(client, self.task_queue, run_input, rid, on_waiting=lambda: inline.serve_now(self))
        return await self._returned(output, [], user_id=user_id, metadata=metadata, debug=debug)

    def acontinue_run(
        self,
        run_response: str | RunOutput | None = None,
        requirements: Sequence[RunRequirement] | None = None,
        *,
        run_id: str | None = None,
        session_id: str | None = None,
        stream: bool = False,
        stream_events: bool = False,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        debug_mode: bool | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> Any:
        """Send the decisions made on ``requirements``; return when the run next pauses or ends.

        ``run_response`` is the paused :class:`RunOutput` (its requirements are sent) or a run id;
        ``run_id=`` and ``requirements=`` may be given as keywords. With no decisions at all (Agno's
        "resolve in the database, then ``continue_run(run_id=...)``"), it returns once the run has
        moved past the decisions already made; the run's approval record is then in
        ``metadata["approval"]``. Decisions the run already has, made the same way (a stale
        ``RunOutput`` decided again as it was decided elsewhere), are not sent again.
        ``session_id`` is accepted for Agno code: a run id alone finds the run. Awaited, it gives
        the RunOutput; with ``stream=True``, an async iterator of run events.

        Raises:
            RunNotFoundError: No run with that id.
            RunEndedError: The run has ended.
            RequirementNotFoundError: A decision names a requirement the run does not have.
            RequirementAlreadyResolvedError: Someone decided first (the message says who).
            InvalidDecisionError: A decision that does not fit its requirement.
            UnresolvedRequirementsError: Requirements left undecided (the message names them).
        """
        del session_id
        call = self._acontinue(run_response, requirements, run_id=run_id, user_id=user_id, metadata=metadata,
                               debug_mode=debug_mode, dependencies=dependencies)
        if not stream:
            return call
        return self._astream(call, _continue_args(run_response, requirements, run_id)[0], continued=True,
                             stream_events=stream_events)

    async def _acontinue(self, run_response: str | RunOutput | None, requirements: Sequence[RunRequirement] | None, *,
                         run_id: str | None, user_id: str | None, metadata: dict[str, Any] | None,
                         debug_mode: bool | None, dependencies: dict[str, Any] | None = None) -> RunOutput:
        debug = self._debug(debug_mode)
        rid, reqs = _continue_args(run_response, requirements, run_id)
        if dependencies is not None:
            known = _context.lookup(rid)
            _context.remember(RunContext(run_id=rid, session_id=known.session_id if known else None,
                                         user_id=user_id or (known.user_id if known else None), metadata=metadata,
                                         dependencies=_context.resolve(dependencies, agent=self),
                                         extra=self._members_extra()))
        client = await self._connect()
        await inline.ensure_served(self)
        decisions = _runs.decisions_of(reqs, rid)
        if debug:
            _log.debug("%s: run %s continues with %d decision(s)", self.name, rid, len(decisions))
        if not decisions:
            output = await _runs.progress(client, rid)
            return await self._returned(output, [], user_id=user_id, metadata=metadata, debug=debug, approval=True)
        output = await continuing.continue_agreeing(client, rid, _runs.signed(self.signer, rid, decisions, reqs))
        return await self._returned(output, decisions, user_id=user_id, metadata=metadata, debug=debug)

    async def _returned(self, output: RunOutput, decisions: Sequence[Decision], *, user_id: str | None,
                        metadata: dict[str, Any] | None, debug: bool, approval: bool = False) -> RunOutput:
        """What every call does before it hands a run back: the records it shows are in PostgreSQL
        (read-your-writes), the approval it went on with is in ``metadata``, post-hooks have run."""
        await _records.settled(self, output, decisions)
        if approval:
            await _records.attach_approval(self, output)
        if debug:
            _log.debug("%s: run %s is %s", self.name, output.run_id, output.status)
        if output.status == RunStatus.completed:
            await _sessions.completed(self, output)
            try:
                await _hooks.run_post_hooks(self, output, user_id=user_id, metadata=metadata, debug_mode=debug)
            except OutputCheckError as exc:  # a guardrail refused the answer: the caller gets an error (as Agno's)
                _log.error("%s: run %s's answer refused by a post-hook: %s (%s)", self.name, output.run_id, exc,
                           exc.error_id)
                output = output.model_copy(update={"status": RunStatus.error, "error": str(exc)})
        return output

    async def _astream(self, call: Awaitable[RunOutput], run_id: str, *, continued: bool,
                       stream_events: bool) -> AsyncGenerator[Any, None]:
        """Agno's run events for one leg of the run: the model's text as it is written (when this process
        serves the run, see ``hitl._core.stream``), then the events of the durable answer."""

        team = self.is_team
        kinds: Any = team_events if team else agent_events
        ids = {"team_id": entity_id(self.name), "team_name": self.name} if team else {
            "agent_id": entity_id(self.name), "agent_name": self.name}
        common = {**ids, "run_id": run_id, "session_id": self.session_id}
        if stream_events:
            yield kinds.RunContinuedEvent(**common) if continued else kinds.RunStartedEvent(**common)
        streamed = False
        own = ""  # the run's own text as streamed (its members' aside)
        members = {_context.member_slug(n): n for n in getattr(self, "members", {})}
        async with _stream.subscribe(run_id, tuple(members)) as deltas:
            task = asyncio.ensure_future(call)
            try:
                while not task.done() or not deltas.empty():
                    getter = asyncio.ensure_future(deltas.get())
                    done, _ = await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                    if getter not in done:
                        getter.cancel()
                        continue
                    delta = getter.result()
                    if not delta.text:
                        continue
                    streamed = True
                    if delta.run_id == run_id:
                        own += delta.text
                        yield kinds.RunContentEvent(**common, content=delta.text)
                    else:  # a member's text, as Agno's team stream carries its members' events
                        slug = _context.member_of(run_id, delta.run_id, members) or ""
                        member = members.get(slug, slug)
                        yield agent_events.RunContentEvent(
                            agent_id=entity_id(member), agent_name=member, run_id=delta.run_id, parent_run_id=run_id,
                            session_id=self.session_id, content=delta.text)
            finally:
                if not task.done():  # the caller stopped reading: the run goes on, get_run has its answer
                    task.cancel()
            output = task.result()
        content_kinds = (agent_events.RunContentEvent, team_events.RunContentEvent)
        for event in events_for(output, team=team, continued=continued, stream_events=stream_events, name=self.name):
            if stream_events and isinstance(event, (kinds.RunStartedEvent, kinds.RunContinuedEvent)):
                continue  # sent first, above
            if streamed and isinstance(event, content_kinds) and own.endswith(str(event.content or "")):
                continue  # its text came as it was written
            yield event  # (a retried turn streams its text again: the durable answer is given whole then)

    def _members_extra(self) -> dict[str, Any]:
        """A team's member slugs: their runs share the team run's context (``hitl._core.context``)."""
        members = getattr(self, "members", None)
        return {"members": tuple(_context.member_slug(n) for n in members)} if members else {}

    def _debug(self, debug_mode: bool | None) -> bool:
        debug = self.debug_mode if debug_mode is None else bool(debug_mode)
        if debug:
            _hooks.debug_logging()
        return debug

    async def aprint_response(self, message: str, *, stream: bool | None = None, markdown: bool | None = None,
                              **run_kwargs: Any) -> None:
        """Run and print as Agno does: the message, the response (or a "Run Paused" panel listing
        what the run waits for; the run stays paused: ``continue_run`` it). ``stream=True`` shows the
        response as it is written; ``run_kwargs`` are :meth:`arun`'s (``session_id``, ``user_id``...)."""

        known = ("run_id", "session_id", "user_id", "metadata", "debug_mode", "dependencies")
        unknown = sorted(set(run_kwargs) - set(known))
        if unknown:
            raise TypeError(f"print_response() got unexpected keyword arguments {unknown}")
        markdown = self.markdown if markdown is None else markdown
        run_id = run_kwargs.pop("run_id", None) or _runs.new_run_id()
        started = time.monotonic()
        call = self._astart(message, run_id=run_id, **{k: run_kwargs.get(k) for k in known if k != "run_id"})
        if stream:
            await aprint_run_stream(self._astream(call, run_id, continued=False, stream_events=True),
                                    message=message, markdown=markdown)
            return
        output = await call
        print_run(output, message=message, markdown=markdown, elapsed=time.monotonic() - started,
                  team=self.is_team)

    async def aget_run(self, run_id: str) -> RunOutput:
        """Load any run by id, open or closed, from any process."""
        client = await self._connect()
        return await _runs.get(client, run_id)

    async def acancel_run(self, run_id: str, *, reason: str | None = None) -> RunOutput:
        """Cancel a run (a team's members with it); return it once closed. Its pending approvals become ``cancelled``.

        Raises:
            RunNotFoundError: No run with that id.
            RunEndedError: The run has already ended.
            TemporalUnavailableError: Temporal could not be reached.
        """
        return await _runs.cancel(await self._connect(), run_id, reason=reason)

    async def alist_runs(self, *, status: str | None = None, tool: str | None = None, limit: int = 100) -> list[RunSummary]:
        """This agent's runs, newest first, from Temporal's search attributes (``status="paused"``,
        ``tool="transfer"`` for runs waiting on that tool).

        Raises:
            InvalidInputError: an unknown status, or a value with quotes in it.
            ConfigurationError: hitl's search attributes are not registered in the namespace.
        """
        client = await self._connect()
        if not await register_search_attributes(client):
            raise ConfigurationError(f"runs cannot be listed in namespace {client.namespace!r}: hitl's search "
                                     "attributes are not registered there (see hitl.observability.visibility)")
        return await _listing.list_runs(client, status=status, tool=tool, agent=self.name, limit=limit)

    async def achange_approval(
        self,
        run_id: str,
        requirement_id: str,
        *,
        approvers: list[str] | None = None,
        extend_by: timedelta | None = None,
        changed_by: str | None = None,
    ) -> RunOutput:
        """Reassign a pending approval (``approvers``) or move its deadline later (``extend_by``)."""
        try:
            change = ChangeApproval(
                requirement_id=requirement_id,
                approvers=approvers,
                extend_by_seconds=extend_by.total_seconds() if extend_by is not None else None,
                changed_by=changed_by,
            )
        except pydantic.ValidationError as exc:
            raise InvalidDecisionError(f"run {run_id}, requirement {requirement_id!r}: change_approval refused: "
                                       f"{'; '.join(str(e['loc'][0]) + ': ' + e['msg'] for e in exc.errors())}") from None
        client = await self._connect()
        if self.signer is not None:  # signed over the requirement's arguments, as the run holds them
            run = await _runs.get(client, run_id)
            change = _runs.signed(self.signer, run_id, [change], run.requirements)[0]
        return await _runs.change(client, run_id, change)

    # ------------------------------------------------------------------ sync API
    def change_approval(
        self,
        run_id: str,
        requirement_id: str,
        *,
        approvers: list[str] | None = None,
        extend_by: timedelta | None = None,
        changed_by: str | None = None,
    ) -> RunOutput:
        """Reassign a pending approval or move its deadline later."""
        return run_sync(self.achange_approval(
            run_id, requirement_id, approvers=approvers, extend_by=extend_by, changed_by=changed_by
        ))

    def run(
        self,
        message: str,
        *,
        stream: bool = False,
        stream_events: bool = False,
        run_id: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        debug_mode: bool | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> Any:
        """Start a run; return when it completes, fails or first pauses (with ``stream=True``: an
        iterator of run events, see :meth:`arun`)."""
        run_id = run_id or _runs.new_run_id()
        call = self._astart(message, run_id=run_id, session_id=session_id, user_id=user_id, metadata=metadata,
                            debug_mode=debug_mode, dependencies=dependencies)
        if stream:
            return _sync_iter(self._astream(call, run_id, continued=False, stream_events=stream_events))
        return run_sync(call)

    def continue_run(
        self,
        run_response: str | RunOutput | None = None,
        requirements: Sequence[RunRequirement] | None = None,
        *,
        run_id: str | None = None,
        session_id: str | None = None,
        stream: bool = False,
        stream_events: bool = False,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        debug_mode: bool | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> Any:
        """Send the decisions made on ``requirements``; return when the run next pauses or ends
        (see :meth:`acontinue_run`)."""
        del session_id
        call = self._acontinue(run_response, requirements, run_id=run_id, user_id=user_id, metadata=metadata,
                               debug_mode=debug_mode, dependencies=dependencies)
        if stream:
            return _sync_iter(self._astream(call, _continue_args(run_response, requirements, run_id)[0], continued=True,
                                            stream_events=stream_events))
        return run_sync(call)

    def print_response(self, message: str, *, stream: bool | None = None, markdown: bool | None = None,
                       **run_kwargs: Any) -> None:
        """Run and print as Agno does (see :meth:`aprint_response`)."""
        run_sync(self.aprint_response(message, stream=stream, markdown=markdown, **run_kwargs))

    def get_session_state(self, session_id: str | None = None) -> dict[str, Any]:
        """The session's state (``session_state=``, as its tools left it): this agent's current session by default."""
        return _sessions.state(self, session_id or self.session_id)

    def get_run(self, run_id: str) -> RunOutput:
        """Load any run by id, open or closed, from any process."""
        return run_sync(self.aget_run(run_id))

    def cancel_run(self, run_id: str, *, reason: str | None = None) -> RunOutput:
        """Cancel a run; return it once closed. Its pending approvals become ``cancelled``."""
        return run_sync(self.acancel_run(run_id, reason=reason))

    def list_runs(self, *, status: str | None = None, tool: str | None = None, limit: int = 100) -> list[RunSummary]:
        """This agent's runs, newest first, from Temporal's search attributes."""
        return run_sync(self.alist_runs(status=status, tool=tool, limit=limit))


def _continue_args(
    run_response: str | RunOutput | None, requirements: Sequence[RunRequirement] | None, run_id: str | None
) -> tuple[str, Sequence[RunRequirement]]:
    if isinstance(run_response, str):
        run_id, run_response = run_id or run_response, None
    if run_response is not None:
        if not isinstance(run_response, RunOutput):
            raise ConfigurationError(f"continue_run takes the paused RunOutput or a run id, got {type(run_response).__name__}")
        run_id = run_id or run_response.run_id
        requirements = requirements if requirements is not None else run_response.requirements
    if not run_id:
        raise ConfigurationError("continue_run needs run_id= (or the RunOutput of the paused run)")
    return run_id, requirements or []


def _sync_iter(events: AsyncGenerator[Any, None]) -> Iterator[Any]:
    """An async iterator of hitl's, iterated from sync code (on hitl's loop thread)."""
    while True:
        try:
            yield run_sync(events.__anext__())
        except StopAsyncIteration:
            return


def _caller() -> tuple[str, str, str]:
    """The module that creates the agent (past hitl's own constructors): its key in sys.modules, its
    importable name (``python -m pkg.mod`` and ``python pkg/mod.py`` give ``__main__``), and the
    function that made it (``<module>`` at the top level)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__") in ("hitl.agent", "hitl.team"):
        frame = frame.f_back
    made_in = getattr(frame.f_code, "co_qualname", frame.f_code.co_name).replace("<locals>.", "")
    key = str(frame.f_globals.get("__name__", "__main__"))
    if key != "__main__":
        return key, key, made_in
    spec = frame.f_globals.get("__spec__")
    if spec is not None and getattr(spec, "name", None):
        return key, str(spec.name), made_in  # python -m pkg.mod
    file = frame.f_globals.get("__file__")
    return key, Path(file).stem if file else "__main__", made_in  # python mod.py: what `import mod` names it beside it


def _code_digest(obj: Any) -> str:
    # A callable object's code is its __call__'s (callable() would not give it).
    code = getattr(obj, "__code__", None) or getattr(getattr(obj, "__call__", None), "__code__", None)  # noqa: B004
    if code is None:
        return repr(type(obj))
    return hashlib.sha256(marshal.dumps(code)).hexdigest()[:16]


def _tool_digest(t: Tool) -> str:
    rule = t.requires_confirmation
    return "|".join([
        t.name, t.description, getattr(t.fn, "__qualname__", ""), _code_digest(t.fn),
        _code_digest(rule) if callable(rule) else str(rule), str(t.requires_user_input), ",".join(t.user_input_fields),
        str(t.external_execution), str(t.idempotent), str(t.timeout), str(t.max_attempts),
        repr(t.approval), t.approval_policy.model_dump_json() if t.approval_policy is not None else "",
        ",".join(sorted(t.delegates_to or {})),
    ])
