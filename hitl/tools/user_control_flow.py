"""``UserControlFlowTools`` (Agno's ``agno.tools.user_control_flow``): the model asks the person for
what it lacks, as a form it makes up itself.

Its tool ``get_user_input(user_input_fields)`` takes the fields the model wants filled, each a dict of
``field_name``, ``field_type`` (``str``, ``int``, ``float``, ``bool``, ``list``, ``dict``; anything else
reads as ``str``) and ``field_description``. The call pauses the run with a user-input requirement whose
``user_input_schema`` has one field per entry, ``value`` None; the person fills them (``field.value =
...`` on each, or ``provide_user_input({...})``), ``continue_run`` sends them, and the model reads
``User inputs retrieved: [{"name": ..., "value": ...}, ...]``, as in Agno. A call with no fields asks
nothing: the tool answers ``User input received``.
"""

from __future__ import annotations

import json
from textwrap import dedent
from typing import Any

import pydantic

from hitl.errors import InvalidInputError
from hitl.run import UserInputField
from hitl.tools._asking import AskingTool
from hitl.tools.toolkit import Toolkit

__all__ = ["UserControlFlowTools", "GetUserInputTool"]

_FIELD_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}


def _problems(exc: pydantic.ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}" for e in exc.errors())


class GetUserInputTool(AskingTool):
    """``get_user_input``: the fields of the model's ``user_input_fields`` become the requirement's
    ``user_input_schema``; the values given are the result."""

    def user_input_request(self, arguments: dict[str, Any]) -> tuple[dict[str, Any], list[UserInputField]] | None:
        try:
            given = self.args_model.model_validate(arguments).model_dump(mode="json")
        except pydantic.ValidationError as exc:
            raise InvalidInputError(f"The call was not made: its arguments are invalid: {_problems(exc)}") from None
        entries = given.get("user_input_fields") or []
        if not entries:
            return None  # nothing to ask: the function runs (as Agno, which pauses only for some fields)
        schema: list[UserInputField] = []
        for i, entry in enumerate(entries):
            name = entry.get("field_name")
            where = f"user_input_fields[{i}]"
            if not isinstance(name, str) or not name.strip():
                raise InvalidInputError(f"The call was not made: {where} has no field_name; give each field a name")
            if name in self.args_model.model_fields:
                raise InvalidInputError(f"The call was not made: {where}: {name!r} cannot name a field; choose another name")
            if any(f.name == name for f in schema):
                raise InvalidInputError(f"The call was not made: {where}: the field {name!r} is asked twice; ask it once")
            kind = entry.get("field_type")
            description = entry.get("field_description")
            schema.append(UserInputField(
                name=name,
                field_type=_FIELD_TYPES.get(kind, str) if isinstance(kind, str) else str,
                description=description if description is None or isinstance(description, str) else str(description),
            ))
        return given, schema

    def check_answers(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return self.answers(arguments)  # any value (Agno converts none: its instructions ask the model to)

    def render_answers(self, arguments: dict[str, Any]) -> str:
        values = [{"name": name, "value": value} for name, value in self.answers(arguments).items()]
        return f"User inputs retrieved: {json.dumps(values, ensure_ascii=False)}"


class UserControlFlowTools(Toolkit):
    """Lets the model stop and ask the person for what it needs (Agno's ``UserControlFlowTools``).

    Args:
        instructions: How the model should use ``get_user_input``; :attr:`DEFAULT_INSTRUCTIONS` when None.
        add_instructions: Whether the instructions are meant for the system message (as Agno's).
        enable_get_user_input: Offer ``get_user_input`` (the only tool).
        all: Offer every tool, whatever the ``enable_`` flags say.
        **kwargs: The :class:`~hitl.tools.Toolkit`'s (``include_tools``, ``exclude_tools``...).
    """

    DEFAULT_INSTRUCTIONS = dedent("""\
        The `get_user_input` tool lets you ask the user for the information you need.

        1. **Asking for input**:
            - When: you need to call a tool or finish a task and some information is missing. Do not say that you
              cannot do it: ask for what is missing with `get_user_input`.
            - How: call `get_user_input` with the fields the user should fill in before you go on.

        ## Rules
        - **Do not ask the user in your reply.** Ask through the `get_user_input` tool.
        - **Do not invent missing information.** Ask for it with `get_user_input` instead.
        - **Ask only for what you lack.** Put in `user_input_fields` only the fields you need and do not have yet.
        - **Describe each field clearly and briefly** in its `field_description`.
        - **Give each field a type** in its `field_type`.

        ## Reading the answers
        - **Booleans**: only an explicit yes is true:
          * true: 'true', 'yes', 'y', '1', 'on', 't' (in any case);
          * false: anything else, including 'false', 'no', 'n', '0', 'off', 'f', an empty answer or no answer.
          * An empty or missing answer is false (not chosen).
        - **The user may leave fields empty.** An empty answer is an answer; for a boolean it means false.
        - **Never ask for a field twice.** Once a field has any answer, an empty one included, take it and go on.
        - **Do not validate or ask again.** Take what the user gave and convert it as needed.
        - **Go on with the fields answered true only**; skip those that are false or unanswered.
        - **Once every answer is in, finish the task at once**, without asking for confirmation.
        """)

    def __init__(
        self,
        instructions: str | None = None,
        add_instructions: bool = True,
        enable_get_user_input: bool = True,
        all: bool = False,
        **kwargs: Any,
    ) -> None:
        self.instructions = self.DEFAULT_INSTRUCTIONS if instructions is None else instructions
        tools = [GetUserInputTool(self.get_user_input)] if all or enable_get_user_input else []
        super().__init__(name="user_control_flow_tools", instructions=self.instructions,
                         add_instructions=add_instructions, tools=tools, **kwargs)

    def get_user_input(self, user_input_fields: list[dict]) -> str:
        """Ask the user to fill in the fields you need, as a form: list every field the user must fill in.

        Args:
            user_input_fields (list[dict[str, str]]): The fields, each a dict with these keys:
                - field_name: the name of the field.
                - field_type: the field's Python type (str, int, float, bool, list, dict...).
                - field_description: what the field is, for the user.
        """
        # Called only when no field is asked: a call with fields pauses the run, and its result is the answers.
        return "User input received"
