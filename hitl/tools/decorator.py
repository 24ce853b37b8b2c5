"""The ``@tool`` decorator (Agno's ``agno.tools.decorator``): a Python function the model may call, with its
human-in-the-loop flags."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, overload

import pydantic

from hitl.errors import InvalidDecisionError, InvalidInputError, ToolDefinitionError
from hitl.run import UserInputField, render_result
from hitl.run.base import RunContext
from hitl.tools._schema import build_args_model, injected_parameters, model_facing_schema, parse_docstring, type_label

__all__ = ["Tool", "tool", "ConfirmationRule", "as_tool", "reserve_tool_threads"]

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def reserve_tool_threads(n: int) -> None:
    """Make sure ``n`` more sync tools can run at once, each on a thread of its own.

    A worker reserves one thread per activity slot it has, so a tool starts the moment its
    activity does: its timeout then measures the tool, never a wait for a thread (asyncio's
    default pool has cores + 4 threads). Threads are made only when needed.
    """
    global _pool, _pool_size
    with _pool_lock:
        _pool_size += n
        old, _pool = _pool, ThreadPoolExecutor(max_workers=max(_pool_size, 8), thread_name_prefix="hitl-tool")
    if old is not None:
        old.shutdown(wait=False)  # the tools running on it finish there


def _tool_pool() -> ThreadPoolExecutor:
    if _pool is None:
        reserve_tool_threads(32)  # outside a worker (a test calling invoke)
    assert _pool is not None
    return _pool

ConfirmationRule = Callable[[dict[str, Any]], bool]
"""A predicate over a call's arguments: True means the call waits for a confirmation."""


class Tool:
    """A function the model may call, with how it runs and which human steps it needs.

    Made by :func:`tool`; the agent reads everything it needs from here. The JSON schema the
    model sees comes from the type hints and the docstring's Args section; fields in
    ``user_input_fields`` are hidden from it and asked of a person instead.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        requires_confirmation: bool | ConfirmationRule = False,
        requires_user_input: bool = False,
        user_input_fields: list[str] | None = None,
        external_execution: bool = False,
        idempotent: bool = True,
        timeout: timedelta = timedelta(minutes=5),
        max_attempts: int = 3,
    ) -> None:
        if not callable(fn):
            raise ToolDefinitionError(f"@tool needs a function, got {fn!r}")
        self.fn = fn
        self.name = name or fn.__name__
        summary, arg_docs = parse_docstring(fn.__doc__)
        self.description = description or summary or self.name
        self.args_model = build_args_model(fn, self.name, arg_docs)
        fields = list(self.args_model.model_fields)
        if user_input_fields and not requires_user_input:
            requires_user_input = True
        if requires_user_input:
            chosen = list(user_input_fields) if user_input_fields else fields
            unknown = [f for f in chosen if f not in fields]
            if unknown:
                raise ToolDefinitionError(
                    f"tool {self.name!r}: user_input_fields {unknown} are not arguments of the function "
                    f"(its arguments are {fields})"
                )
            self.user_input_fields = chosen
        else:
            self.user_input_fields = []
        if sum(bool(x) for x in (requires_confirmation, requires_user_input, external_execution)) > 1:
            raise ToolDefinitionError(
                f"tool {self.name!r}: choose one of requires_confirmation, requires_user_input, external_execution"
            )
        if not isinstance(requires_confirmation, bool) and not callable(requires_confirmation):
            raise ToolDefinitionError(f"tool {self.name!r}: requires_confirmation must be a bool or a predicate")
        if max_attempts < 1:
            raise ToolDefinitionError(f"tool {self.name!r}: max_attempts must be at least 1, got {max_attempts}")
        if timeout <= timedelta(0):
            raise ToolDefinitionError(f"tool {self.name!r}: timeout must be positive, got {timeout}")
        self.requires_confirmation = requires_confirmation
        self.delegates_to: dict[str, Any] | None = None
        """Set on a team's delegation tool: member name -> Agent."""
        self.requires_user_input = requires_user_input
        self.external_execution = external_execution
        self.idempotent = idempotent
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.is_async = inspect.iscoroutinefunction(fn)
        self._injected = injected_parameters(fn)
        self.approval: Any = None  # set by @approval; recorded by the audit trail
        self.approval_policy: Any = None  # hitl.policy.ApprovalPolicy, set by @approval
        self.schema = model_facing_schema(self.args_model, set(self.user_input_fields))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def entrypoint(self) -> Callable[..., Any]:
        """The wrapped function (Agno's ``Function.entrypoint``): ``entrypoint(**tool_args)`` runs the
        body, as the caller of an external-execution tool does before ``set_external_execution_result``."""
        return self.fn

    @property
    def takes_run_context(self) -> bool:
        """Whether the function declares a ``run_context`` parameter, which :meth:`invoke` fills."""
        return "run_context" in self._injected

    @property
    def takes_agent(self) -> bool:
        """Whether the function declares an ``agent`` parameter (or one typed ``Agent``), which :meth:`invoke` fills."""
        return "agent" in self._injected

    @property
    def takes_team(self) -> bool:
        """Whether the function declares a ``team`` parameter (or one typed ``Team``), which :meth:`invoke` fills."""
        return "team" in self._injected

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    def needs_confirmation(self, arguments: dict[str, Any]) -> bool:
        """Whether a call with these arguments waits for a confirmation."""
        rule = self.requires_confirmation
        return bool(rule(arguments)) if callable(rule) else bool(rule)

    def validate_arguments(self, arguments: dict[str, Any], *, context: str) -> dict[str, Any]:
        """The arguments checked against the tool's schema, as JSON-ready values.

        Raises:
            InvalidDecisionError: with the failing fields, prefixed by ``context``.
        """
        try:
            validated = self.args_model.model_validate(arguments)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}" for err in exc.errors()
            )
            raise InvalidDecisionError(f"{context}: arguments for tool {self.name!r} are invalid: {problems}") from None
        return validated.model_dump(mode="json")

    def field_type(self, field: str) -> str:
        return type_label(self.args_model, field)

    def field_description(self, field: str) -> str | None:
        return self.args_model.model_fields[field].description

    def user_input_request(self, arguments: dict[str, Any]) -> tuple[dict[str, Any], list[UserInputField]] | None:
        """What a call with the model's ``arguments`` asks of a person, when the model's turn is planned.

        Returns None when it asks nothing (the call runs, or waits for a confirmation, as flagged);
        else the arguments kept from the model (the call's ``tool_args``) and the fields of its
        user-input requirement (``user_input_schema``: those whose ``value`` is None are asked).
        Here, a ``requires_user_input`` tool's fields are its arguments, the model's values in those
        it filled and None in ``user_input_fields`` (whatever the model put there is dropped, not
        trusted); a tool whose questions come from the model's arguments overrides this
        (``get_user_input``, ``ask_user``).

        Raises:
            InvalidInputError: the arguments cannot make a question; the message is told to the model.
        """
        if not self.requires_user_input:
            return None
        known = {k: v for k, v in arguments.items() if k not in self.user_input_fields and k in self.args_model.model_fields}
        schema = [
            UserInputField(
                name=f,
                field_type=self.field_type(f),
                description=self.field_description(f),
                value=None if f in self.user_input_fields else known.get(f),
            )
            for f in self.args_model.model_fields
        ]
        return known, schema

    async def invoke(
        self, arguments: dict[str, Any], run_context: RunContext | None = None, *, agent: Any = None, team: Any = None
    ) -> str:
        """Run the function on validated arguments; the result as the text the model reads.

        ``run_context``, ``agent`` and ``team`` are passed to a function that declares them (as Agno
        injects them; None when not given, unless the parameter has a default of its own);
        ``arguments`` never carry them.

        Raises:
            InvalidInputError: the arguments no longer fit the tool (it changed while its call
                waited for a decision); the function is not called.
        """
        try:
            validated = self.args_model.model_validate(arguments)
        except pydantic.ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}" for e in exc.errors())
            raise InvalidInputError(f"tool {self.name!r}: arguments {problems}") from None
        kwargs = {name: getattr(validated, name) for name in self.args_model.model_fields}
        return await self._call(kwargs, {"run_context": run_context, "agent": agent, "team": team})

    async def _call(self, kwargs: dict[str, Any], offered: dict[str, Any]) -> str:
        """The function called with ``kwargs`` and what it declares of ``offered`` (the injected values)."""
        for kind, param in self._injected.items():
            value = offered.get(kind)
            if value is not None or param.default is inspect.Parameter.empty:
                kwargs[param.name] = value
        if self.is_async:
            result = await self.fn(**kwargs)
        else:
            # A sync tool must not block the worker's event loop (and its other runs): it gets a
            # thread of its own, from a pool sized to the worker's activity slots.
            context = contextvars.copy_context()  # as asyncio.to_thread does
            result = await asyncio.get_running_loop().run_in_executor(
                _tool_pool(), functools.partial(context.run, self.fn, **kwargs))
        return render_result(result)


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    requires_confirmation: bool | ConfirmationRule = False,
    requires_user_input: bool = False,
    user_input_fields: list[str] | None = None,
    external_execution: bool = False,
    idempotent: bool = True,
    timeout: timedelta = timedelta(minutes=5),
    max_attempts: int = 3,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(fn: Callable[..., Any] | None = None, /, **options: Any) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a function a tool, bare (``@tool``) or with options (``@tool(requires_confirmation=True)``).

    Args:
        name: The name the model calls it by; defaults to the function's name.
        description: Defaults to the docstring's summary.
        requires_confirmation: True, or a predicate over the arguments: the call waits for
            ``confirm()`` or ``reject()`` before it runs.
        requires_user_input: The call waits for a person to fill ``user_input_fields`` (all
            arguments when that list is empty); those fields are hidden from the model.
        user_input_fields: The arguments a person provides.
        external_execution: The agent never runs the body; the call waits for ``provide_result()``.
        idempotent: False means an attempt that may have started (its worker died, it timed out)
            is never retried blindly: the run pauses and a person decides.
        timeout: Start-to-close timeout of one attempt.
        max_attempts: Attempts before the error is handed to the model (1 when not idempotent).
    """

    def wrap(f: Callable[..., Any]) -> Tool:
        if isinstance(f, Tool):
            if f.approval is None:
                raise ToolDefinitionError(f"{f.name!r} is already a tool; apply @tool once")
            # @tool(...) above @approval: rebuild with these options, keep the approval mark.
            rebuilt = Tool(f.fn, **options)
            rebuilt.approval = f.approval
            rebuilt.approval_policy = f.approval_policy
            if f.approval.value == "required" and not (
                rebuilt.requires_confirmation or rebuilt.requires_user_input or rebuilt.external_execution
            ):
                rebuilt.requires_confirmation = True
            return rebuilt
        return Tool(f, **options)

    if fn is not None:
        return wrap(fn)
    return wrap


def as_tool(obj: Tool | Callable[..., Any]) -> Tool:
    """A plain function given in ``tools=[...]`` becomes a tool with default options."""
    return obj if isinstance(obj, Tool) else Tool(obj)
