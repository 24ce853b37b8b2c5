"""``Agent``: an LLM with tools whose every run is a durable Temporal workflow."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from collections.abc import Callable, Sequence
from typing import Any

from temporalio.client import Client

from hitl import _client, _registry, _runs
from hitl._sync import run_sync
from hitl._wire import RunInput
from hitl.config import Settings
from hitl.db.postgres import PostgresDb
from hitl.decisions import ChangeApproval
from hitl.notify import Notifier
from hitl.policy import ApprovalRule
from hitl.errors import ConfigurationError
from hitl.models.openai import OpenAIChat, OpenAIModel
from hitl.run import RunOutput, RunRequirement
from hitl.tools import Tool, as_tool
from hitl.visibility import register_search_attributes

__all__ = ["Agent"]


class Agent:
    """An agent whose runs survive crashes and wait for people.

    Args:
        model: ``OpenAIChat`` or ``OpenAIResponses`` (default ``OpenAIChat("gpt-4o")``).
        name: The name workers serve it under; defaults to one derived from its definition.
        tools: Tools (``@tool``) or plain functions.
        db: Where approvals are recorded (``PostgresDb``).
        instructions: The system prompt; a list is joined by newlines.
        role: What the agent does, for teams.
        task_queue, temporal_address, namespace: Override ``TEMPORAL_TASK_QUEUE``,
            ``TEMPORAL_ADDRESS`` and ``TEMPORAL_NAMESPACE``.
        client: A connected Temporal client to use instead of connecting (it must use the
            pydantic data converter); async calls then run on its event loop.
        notifiers: Told when an approval is requested, reminded, escalated or expires
            (``hitl.notify.WebhookNotifier`` or any async callable); they run in the worker.
        approval_rules: Gate tools that carry no ``@approval`` by name or by a predicate over
            their arguments (``hitl.policy.ApprovalRule``); evaluated in the worker.
        history_event_limit: Continue-as-new past this many history events.

    Raises:
        ConfigurationError: two tools with one name, or a model of an unknown kind.
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
    ) -> None:
        self.model = model if model is not None else OpenAIChat(id="gpt-4o")
        if not isinstance(self.model, OpenAIModel):
            raise ConfigurationError(f"Agent model must be OpenAIChat or OpenAIResponses, got {type(model).__name__}")
        self.tools: dict[str, Tool] = {}
        for t in tools or []:
            made = as_tool(t)
            if made.name in self.tools:
                raise ConfigurationError(f"Agent {name or ''}: two tools are named {made.name!r}")
            self.tools[made.name] = made
        self.instructions = instructions if isinstance(instructions, str) or instructions is None else "\n".join(instructions)
        self.role = role
        self.description = description
        self.db = db
        self.history_event_limit = history_event_limit
        self.notifiers: list[Notifier] = list(notifiers or [])
        self.approval_rules: list[ApprovalRule] = list(approval_rules or [])
        self.name = name or self._default_name()
        self._temporal_client = client
        self._overrides = {"temporal_address": temporal_address, "namespace": namespace, "task_queue": task_queue}
        _registry.register(self)

    def __repr__(self) -> str:
        return f"Agent(name={self.name!r}, tools={list(self.tools)})"

    def _default_name(self) -> str:
        # The same definition in the client and the worker gives the same name.
        fingerprint = "|".join([self.model.id, *sorted(self.tools), self.instructions or ""])
        return "agent-" + hashlib.sha256(fingerprint.encode()).hexdigest()[:10]

    @property
    def _settings(self) -> Settings:
        # Read at use, not at definition: modules defining agents are often imported before
        # the environment is set (test collection, worker start-up).
        return Settings.from_env(**self._overrides)

    @property
    def task_queue(self) -> str:
        return self._settings.task_queue

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
        return await _runs.continue_(client, rid, reqs)

    async def aget_run(self, run_id: str) -> RunOutput:
        """Load any run by id, open or closed, from any process."""
        client = await self._connect()
        return await _runs.get(client, run_id)

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
        change = ChangeApproval(
            requirement_id=requirement_id,
            approvers=approvers,
            extend_by_seconds=extend_by.total_seconds() if extend_by is not None else None,
            changed_by=changed_by,
        )
        return await _runs.change(await self._connect(), run_id, change)

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
