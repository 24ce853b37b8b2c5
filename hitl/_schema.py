"""Build a tool's argument model from its signature and the Args section of its docstring."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, get_type_hints

import pydantic

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


def build_args_model(fn: Callable[..., Any], name: str, arg_docs: dict[str, str]) -> type[pydantic.BaseModel]:
    """A pydantic model with one field per parameter of ``fn``, typed by its hints."""
    signature = inspect.signature(fn)
    try:
        hints = get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        hints = {}
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
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
