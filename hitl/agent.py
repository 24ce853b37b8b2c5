"""``Agent``: an LLM with tools whose every run is a durable Temporal workflow."""

from __future__ import annotations

import hashlib
import marshal
import sys
from datetime import timedelta
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pydantic
from temporalio.client import Client

from hitl import _client, _listing, _registry, _runs
from hitl._sync import run_sync
from hitl._wire import RunInput
from hitl.config import Settings
from hitl.db.postgres import PostgresDb
from hitl.decisions import ChangeApproval
from hitl.notify import Notifier
from hitl.policy import ApprovalRule
from hitl.errors import ConfigurationError, InvalidDecisionError
from hitl.models.openai import OpenAIChat, OpenAIModel
from hitl.run import RunOutput, RunRequirement, RunSummary
from hitl.signing import Signer
from hitl.tools import Tool, expand_tools
from hitl.visibility import register_search_attributes

__all__ = ["Agent"]


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
        signer: Signs this process's decisions and approval changes (``hitl.signing``), for runs
            whose workers are strict (they trust its public key).

    Raises:
        ConfigurationError: two tools with one name, a model of an unknown kind, or a ``name``
            already given to a different agent.
    """

    def __init__(
        self,
        model: OpenAIModel | None = None,
        *,
        name: str | None = None,
        tools: Sequence[Tool | Callable[..., Any]] | None = None,
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
    ) -> None:
        self.model = model if model is not None else OpenAIChat(id="gpt-4o")
        if not isinstance(self.model, OpenAIModel):
            raise ConfigurationError(f"Agent model must be OpenAIChat or OpenAIResponses, got {type(model).__name__}")
        self.tools: dict[str, Tool] = {}
        for made in expand_tools(tools or []):
            if made.name in self.tools:
                raise ConfigurationError(f"Agent {name or ''}: two tools are named {made.name!r}")
            self.tools[made.name] = made
        if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 200):
            raise ConfigurationError(f"Agent name {name!r}: give a non-empty name of at most 200 characters")
        self.instructions = instructions if isinstance(instructions, str) or instructions is None else "\n".join(instructions)
        self.role = role
        self.description = description
        self.db = db
        self.history_event_limit = history_event_limit
        self.notifiers: list[Notifier] = list(notifiers or [])
        self.approval_rules: list[ApprovalRule] = list(approval_rules or [])
        self.signer = signer
        self._name = name
        self.has_explicit_name = name is not None
        self._module, self.defined_in = _caller()
        self._temporal_client = client
        self._overrides = {"temporal_address": temporal_address, "namespace": namespace, "task_queue": task_queue}
        if task_queue is not None and (not task_queue.strip() or len(task_queue) > 900):
            raise ConfigurationError(f"Agent task_queue {task_queue!r}: give a non-empty name of at most 900 characters")
        _registry.register(self)

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
        module = sys.modules.get(self._module)
        for variable, value in (vars(module) if module is not None else {}).items():
            if value is self:
                return f"{self.defined_in}.{variable}"
        raise ConfigurationError(
            f"{type(self).__name__} defined in {self.defined_in} is not bound at the top level of its module, so it has "
            "no default name: give it name= (a run is bound to its agent's name)"
        )

    def definition(self) -> str:
        """A digest of what the agent does: two agents under one name must have the same one."""
        model = self.model
        parts = [type(self).__name__, type(model).__name__, model.id, model.api, str(model.base_url),
                 str(model.temperature), self.instructions or "", self.role or "", self.description or "",
                 repr((self.db.approvals_table, self.db._db_url) if self.db is not None else None),
                 str(self.history_event_limit), repr(self._overrides.get("task_queue"))]
        parts += [_tool_digest(t) for t in self.tools.values()]
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
    async def arun(
        self, message: str, *, run_id: str | None = None, session_id: str | None = None, user_id: str | None = None
    ) -> RunOutput:
        """Start a run; return when it completes, fails or first pauses."""
        client = await self._connect()
        run_input = RunInput(
            agent_name=self.name,
            message=message,
            session_id=session_id,
            user_id=user_id,
            history_event_limit=self.history_event_limit,
            audit=self.db is not None,
            notify=bool(self.notifiers),
            search_attributes=await register_search_attributes(client),
        )
        return await _runs.start(client, self.task_queue, run_input, run_id or _runs.new_run_id())

    async def acontinue_run(
        self,
        run_id: str | RunOutput | None = None,
        requirements: Sequence[RunRequirement] | None = None,
        *,
        run_response: RunOutput | None = None,
    ) -> RunOutput:
        """Send the decisions made on ``requirements``; return when the run next pauses or ends.

        Raises:
            RunNotFoundError, RunEndedError, RequirementNotFoundError,
            RequirementAlreadyResolvedError, InvalidDecisionError, UnresolvedRequirementsError.
        """
        rid, reqs = _continue_args(run_id, requirements, run_response)
        client = await self._connect()
        return await _runs.continue_with(client, rid, _runs.signed(self.signer, rid, _runs.decisions_of(reqs), reqs))

    async def aget_run(self, run_id: str) -> RunOutput:
        """Load any run by id, open or closed, from any process."""
        client = await self._connect()
        return await _runs.get(client, run_id)

    async def acancel_run(self, run_id: str, *, reason: str | None = None) -> RunOutput:
        """Cancel a run (a team's members with it); return it once closed. Its pending approvals become ``cancelled``.

        Raises:
            RunNotFoundError, RunEndedError, TemporalUnavailableError.
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
                                     "attributes are not registered there (see hitl.visibility)")
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
        self, message: str, *, run_id: str | None = None, session_id: str | None = None, user_id: str | None = None
    ) -> RunOutput:
        """Start a run; return when it completes, fails or first pauses."""
        return run_sync(self.arun(message, run_id=run_id, session_id=session_id, user_id=user_id))

    def continue_run(
        self,
        run_id: str | RunOutput | None = None,
        requirements: Sequence[RunRequirement] | None = None,
        *,
        run_response: RunOutput | None = None,
    ) -> RunOutput:
        """Send the decisions made on ``requirements``; return when the run next pauses or ends."""
        return run_sync(self.acontinue_run(run_id, requirements, run_response=run_response))

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
    run_id: str | RunOutput | None, requirements: Sequence[RunRequirement] | None, run_response: RunOutput | None
) -> tuple[str, Sequence[RunRequirement]]:
    if isinstance(run_id, RunOutput):
        run_response, run_id = run_id, None
    if run_response is not None:
        run_id = run_id or run_response.run_id
        requirements = requirements if requirements is not None else run_response.requirements
    if not run_id:
        raise ConfigurationError("continue_run needs run_id= (or the RunOutput of the paused run)")
    return run_id, requirements or []


def _caller() -> tuple[str, str]:
    """The module that creates the agent (past hitl's own constructors): its key in sys.modules,
    and its importable name (``python -m pkg.mod`` and ``python pkg/mod.py`` give ``__main__``)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__") in ("hitl.agent", "hitl.team"):
        frame = frame.f_back
    key = str(frame.f_globals.get("__name__", "__main__"))
    if key != "__main__":
        return key, key
    spec = frame.f_globals.get("__spec__")
    if spec is not None and getattr(spec, "name", None):
        return key, str(spec.name)  # python -m pkg.mod
    file = frame.f_globals.get("__file__")
    return key, Path(file).stem if file else "__main__"  # python mod.py: what `import mod` names it beside it


def _code_digest(obj: Any) -> str:
    code = getattr(obj, "__code__", None) or getattr(getattr(obj, "__call__", None), "__code__", None)
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
