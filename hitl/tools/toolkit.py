"""``Toolkit``: several tools given to an agent as one (Agno's ``agno.tools.Toolkit``), usually a class
whose methods are the tools::

    class EmailTools(Toolkit):
        def __init__(self, *args, **kwargs):
            super().__init__(name="EmailTools", tools=[self.send_email, self.get_emails], *args, **kwargs)

        def send_email(self, subject: str, body: str, to_address: str) -> str:
            ...

    Agent(tools=[EmailTools(requires_confirmation_tools=["send_email"])])

``tools=[...]`` expands a toolkit into its tools (:func:`hitl.tools.expand_tools`), with the flags the
toolkit gives them by name.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from hitl.errors import ToolDefinitionError
from hitl.tools.decorator import Tool, as_tool

__all__ = ["Toolkit"]

_ACCEPTED = {
    "id": "an id for Agno's registry",
    "add_instructions": "whether Agno puts the instructions in the system message",
    "stop_after_tool_call_tools": "Agno's stop-after-call tools",
    "show_result_tools": "Agno's display of results",
    "cache_results": "Agno's result cache",
    "cache_ttl": "Agno's result cache",
    "cache_dir": "Agno's result cache",
    "timeout": "a subclass's own I/O timeout",
}
"""Agno's other keywords: kept as attributes for subclasses that read them, and otherwise changing nothing."""


class Toolkit:
    """Tools given as one: functions, bound methods (``self.send_email``) or :class:`~hitl.tools.Tool`\\ s.

    Args:
        name: The toolkit's name (its tools keep their own names).
        tools: What the toolkit holds: callables, bound methods, or ``@tool`` tools; a ``@tool``
            on a method in the class body is bound to this toolkit.
        instructions: Guidance on using the tools, kept for the agent that shows it.
        include_tools: Only these tools (by name).
        exclude_tools: All tools but these.
        requires_confirmation_tools: These tools wait for ``confirm()``/``reject()`` before they run.
        external_execution_required_tools: These tools are never run by the agent: the run waits for
            ``set_external_execution_result()``.
        async_tools: Agno's ``(async_callable, name)`` pairs: each is the tool of that name (it
            replaces a sync one so named; hitl's worker is asynchronous either way).
        auto_register: False leaves ``tools`` for :meth:`register` to add one by one.
        id, add_instructions, stop_after_tool_call_tools, show_result_tools, cache_results,
            cache_ttl, cache_dir, timeout: Agno's, accepted and kept as attributes; they change
            nothing in hitl.

    A name in ``include_tools``, ``exclude_tools``, ``requires_confirmation_tools`` or
    ``external_execution_required_tools`` that matches no tool is a ``ToolDefinitionError`` when the
    toolkit is expanded (given to an agent), as is a tool given two human flags at once.

    Raises:
        ToolDefinitionError: a keyword neither hitl nor Agno has.
    """

    def __init__(
        self,
        name: str = "toolkit",
        *,
        tools: Sequence[Callable[..., Any] | Tool] | None = None,
        instructions: str | None = None,
        include_tools: Sequence[str] | None = None,
        exclude_tools: Sequence[str] | None = None,
        requires_confirmation_tools: Sequence[str] | None = None,
        external_execution_required_tools: Sequence[str] | None = None,
        async_tools: Sequence[tuple[Callable[..., Any], str]] | None = None,
        auto_register: bool = True,
        **options: Any,
    ) -> None:
        unknown = sorted(set(options) - set(_ACCEPTED))
        if unknown:
            raise ToolDefinitionError(
                f"Toolkit {name!r}: unknown keyword(s) {unknown}; a Toolkit takes name, tools, instructions, "
                "include_tools, exclude_tools, requires_confirmation_tools, external_execution_required_tools, "
                f"async_tools, auto_register, and Agno's {sorted(_ACCEPTED)}")
        self.name = name
        self.tools: list[Callable[..., Any] | Tool] = list(tools or [])
        self.instructions = instructions
        self.include_tools = list(include_tools) if include_tools is not None else None
        self.exclude_tools = list(exclude_tools) if exclude_tools is not None else None
        self.requires_confirmation_tools: list[str] = list(requires_confirmation_tools or [])
        self.external_execution_required_tools: list[str] = list(external_execution_required_tools or [])
        for key in _ACCEPTED:
            if key in options or not hasattr(self, key):  # a subclass may have set its own first (timeout)
                setattr(self, key, options.get(key))
        self._registered: list[tuple[Callable[..., Any] | Tool, str | None]] = []
        if auto_register:
            for obj in self.tools:
                self.register(obj)
            for fn, alias in async_tools or []:
                self.register(fn, name=alias)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def register(self, function: Callable[..., Any] | Tool, name: str | None = None) -> None:
        """Add a tool (Agno's ``Toolkit.register``): a callable, a bound method or a ``@tool``, under
        ``name`` if given (a later one of the same name replaces an earlier one)."""
        if not callable(function):
            raise ToolDefinitionError(f"Toolkit {self.name!r}: a tool must be callable, got {function!r}")
        self._registered.append((function, name))

    def get_tools(self) -> list[Tool]:
        """The toolkit's tools, filtered by ``include_tools``/``exclude_tools`` and flagged by name.

        Raises:
            ToolDefinitionError: a name in those lists that matches no tool (naming it), or a
                tool given two human flags at once.
        """
        made: dict[str, Tool] = {}
        for obj, alias in self._registered:
            t = self._as_tool(obj, alias)
            made[t.name] = t
        available = list(made)
        for option in ("include_tools", "exclude_tools", "requires_confirmation_tools",
                       "external_execution_required_tools"):
            names = getattr(self, option) or []
            missing = [n for n in names if n not in made]
            if missing:
                raise ToolDefinitionError(
                    f"Toolkit {self.name!r}: {option} names {missing}, which match no tool (its tools are {available})")
        chosen = [t for n, t in made.items()
                  if (self.include_tools is None or n in self.include_tools) and n not in (self.exclude_tools or [])]
        return [self._flagged(t) for t in chosen]

    @property
    def functions(self) -> dict[str, Tool]:
        """The tools by name (Agno's ``Toolkit.functions``)."""
        return {t.name: t for t in self.get_tools()}

    def _as_tool(self, obj: Callable[..., Any] | Tool, alias: str | None) -> Tool:
        if isinstance(obj, Tool):
            fn = obj.fn
            if _unbound_method(fn):  # @tool on a method in the class body: bind it to this toolkit
                fn = types.MethodType(fn, self)
            if fn is obj.fn and alias in (None, obj.name):
                return obj
            return _rebuilt(obj, fn=fn, name=alias or obj.name)
        if isinstance(obj, type):
            raise ToolDefinitionError(f"Toolkit {self.name!r}: {obj.__name__} is a class; give a function or an instance's method")
        return Tool(obj, name=alias)

    def _flagged(self, t: Tool) -> Tool:
        confirm = t.name in self.requires_confirmation_tools
        external = t.name in self.external_execution_required_tools
        if (not confirm or t.requires_confirmation is True) and (not external or t.external_execution):
            return t
        return _rebuilt(t, requires_confirmation=True if confirm else t.requires_confirmation,
                        external_execution=t.external_execution or external)


def _unbound_method(fn: Callable[..., Any]) -> bool:
    if inspect.ismethod(fn):
        return False
    try:
        first = next(iter(inspect.signature(fn).parameters), None)
    except (TypeError, ValueError):
        return False
    return first == "self"


def _rebuilt(t: Tool, **changes: Any) -> Tool:
    """``t`` made again with some options changed; its ``@approval`` marks kept."""
    options: dict[str, Any] = {
        "fn": t.fn, "name": t.name, "description": t.description, "requires_confirmation": t.requires_confirmation,
        "requires_user_input": t.requires_user_input,
        "user_input_fields": list(t.user_input_fields) if t.requires_user_input else None,
        "external_execution": t.external_execution, "idempotent": t.idempotent, "timeout": t.timeout,
        "max_attempts": t.max_attempts,
    }
    options.update(changes)
    fn = options.pop("fn")
    made = Tool(fn, **options)
    made.approval, made.approval_policy, made.delegates_to = t.approval, t.approval_policy, t.delegates_to
    return made


def expand_tools(objs: Iterable[Any]) -> list[Tool]:
    """What ``tools=[...]`` holds, as tools: tools, plain functions, bound methods, and each
    :class:`Toolkit`'s tools (filtered and flagged by the toolkit, see :meth:`Toolkit.get_tools`).

    Raises:
        ToolDefinitionError: a toolkit names a tool it does not have, or a toolkit class is given
            instead of an instance.
    """
    tools: list[Tool] = []
    for obj in objs:
        if isinstance(obj, Toolkit):
            tools.extend(obj.get_tools())
        elif isinstance(obj, type) and issubclass(obj, Toolkit):
            raise ToolDefinitionError(f"tools=[{obj.__name__}]: a Toolkit class; give an instance ({obj.__name__}())")
        else:
            tools.append(as_tool(obj))
    return tools
