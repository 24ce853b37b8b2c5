"""Build a tool's argument model from its signature and the Args section of its docstring."""

from __future__ import annotations

import inspect
import re
import sys
import types
from collections.abc import Callable
from typing import Any, Union, get_args, get_origin, get_type_hints

import pydantic

from hitl.run.base import RunContext

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Examples?|Notes?)\s*:\s*$")
_ARG_LINE = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its summary and a description per argument."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    arg_indent = 0
    for line in lines:
        header = _SECTION.match(line)
        if header:
            section, current = header.group(1), None
            continue
        if section is None:
            summary.append(line)
            continue
        if section not in ("Args", "Arguments", "Parameters") or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        match = _ARG_LINE.match(line)
        if match and (current is None or indent <= arg_indent):
            current, arg_indent = match.group(1), indent
            args[current] = match.group(2).strip()
        elif current is not None:
            args[current] = f"{args[current]} {line.strip()}".strip()
    return " ".join(part.strip() for part in summary if part.strip()), args


INJECTED_PARAMETERS = frozenset({"run_context", "agent", "team"})
"""Parameters hitl fills itself, never the model, as Agno injects them: ``run_context`` (the run's
:class:`~hitl.run.base.RunContext`), ``agent`` (the Agent running the tool) and ``team`` (the Team: the
one running it, or the one whose member runs it). So is any parameter typed ``RunContext``, ``Agent``
or ``Team`` under another name."""


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        return {}


def _hitl_class(name: str) -> type | None:
    """hitl's ``Agent`` or ``Team`` class when its module is loaded (a tool annotated with one was
    defined after importing it), without importing it here: hitl.agent imports this module."""
    module = sys.modules.get("hitl.team" if name == "Team" else "hitl.agent")
    found = getattr(module, name, None) if module is not None else None
    return found if isinstance(found, type) else None


def injected_kind(param: inspect.Parameter, hints: dict[str, Any]) -> str | None:
    """What hitl injects into ``param`` (``run_context``, ``agent`` or ``team``), or None when the model fills it."""
    if param.name in INJECTED_PARAMETERS:
        return param.name
    annotation = hints.get(param.name, param.annotation)
    if isinstance(annotation, str):  # a forward reference left unresolved
        last = annotation.rsplit(".", 1)[-1]
        return {"RunContext": "run_context", "Agent": "agent", "Team": "team"}.get(last)
    if get_origin(annotation) in (Union, types.UnionType):  # Optional[Agent], Team | None
        kinds = {_typed_kind(arg) for arg in get_args(annotation) if arg is not type(None)}
        return kinds.pop() if len(kinds) == 1 else None
    return _typed_kind(annotation)


def _typed_kind(annotation: Any) -> str | None:
    if annotation is RunContext:
        return "run_context"
    if isinstance(annotation, type):
        team, agent = _hitl_class("Team"), _hitl_class("Agent")
        if team is not None and issubclass(annotation, team):
            return "team"
        if agent is not None and issubclass(annotation, agent):
            return "agent"
    return None


def _is_injected(param: inspect.Parameter, hints: dict[str, Any]) -> bool:
    return injected_kind(param, hints) is not None


def _is_self(fn: Callable[..., Any], param: inspect.Parameter) -> bool:
    """A method's ``self`` left unbound (``@tool`` on a method in a class body): the toolkit binds it."""
    first = next(iter(inspect.signature(fn).parameters), None)
    return param.name == "self" and first == "self" and not inspect.ismethod(fn)


def injected_parameters(fn: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The parameters of ``fn`` hitl fills, by what it fills them with (``run_context``, ``agent``,
    ``team``); the first of each kind when several are declared."""
    hints = _hints(fn)
    found: dict[str, inspect.Parameter] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or _is_self(fn, param):
            continue
        kind = injected_kind(param, hints)
        if kind is not None:
            found.setdefault(kind, param)
    return found


def run_context_parameter(fn: Callable[..., Any]) -> inspect.Parameter | None:
    """The parameter of ``fn`` that takes the run's :class:`~hitl.run.base.RunContext`, if it declares one."""
    return injected_parameters(fn).get("run_context")


def build_args_model(fn: Callable[..., Any], name: str, arg_docs: dict[str, str]) -> type[pydantic.BaseModel]:
    """A pydantic model with one field per parameter of ``fn`` the model fills, typed by its hints.

    Left out: ``*args``/``**kwargs``, an unbound method's ``self``, and what hitl injects (a
    ``run_context``, ``agent`` or ``team`` parameter, or one typed ``RunContext``, ``Agent`` or ``Team``).
    """
    signature = inspect.signature(fn)
    hints = _hints(fn)
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if _is_self(fn, param) or _is_injected(param, hints):
            continue
        annotation = hints.get(param.name, param.annotation)
        if annotation is inspect.Parameter.empty:
            annotation = Any
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, pydantic.Field(default, description=arg_docs.get(param.name)))
    model_name = "".join(part.capitalize() for part in name.split("_")) + "Args"
    return pydantic.create_model(model_name, __config__=pydantic.ConfigDict(extra="forbid"), **fields)


def model_facing_schema(args_model: type[pydantic.BaseModel], hidden: set[str]) -> dict[str, Any]:
    """The JSON schema the model sees: every argument except those a person provides."""
    schema = args_model.model_json_schema()
    schema.pop("title", None)
    properties = {k: v for k, v in schema.get("properties", {}).items() if k not in hidden}
    for prop in properties.values():
        prop.pop("title", None)
    result: dict[str, Any] = {"type": "object", "properties": properties}
    required = [k for k in schema.get("required", []) if k not in hidden]
    if required:
        result["required"] = required
    if "$defs" in schema:
        result["$defs"] = schema["$defs"]
    return result


def type_label(args_model: type[pydantic.BaseModel], field: str) -> str:
    """A short, readable name of a field's type, for user_input_schema."""
    annotation = args_model.model_fields[field].annotation
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")
