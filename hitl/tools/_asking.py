"""Tools whose call is a question for a person (Agno's ``get_user_input`` and ``ask_user``).

The model's arguments are the question: when its turn is planned, :meth:`AskingTool.user_input_request`
makes them a user-input requirement (the run pauses, as for any ``requires_user_input`` tool); the
person's answer comes back through the run's usual checks (only the fields asked, every one of them,
see workflows/decisions.py) as arguments beside the model's, and the tool's result, what the model
reads, is that answer (:meth:`AskingTool.render_answers`). A call that asks nothing runs the function
itself, as Agno does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic_core

from hitl.errors import InvalidDecisionError, InvalidInputError, ToolDefinitionError
from hitl.run import UserInputField
from hitl.run.base import RunContext
from hitl.tools.decorator import Tool


class AskingTool(Tool):
    """A tool that asks a person what its model arguments say, and answers the model with what they said.

    Subclasses say how the arguments make the question (:meth:`user_input_request`), which answers
    are acceptable (:meth:`check_answers`) and how the model reads them (:meth:`render_answers`).
    The answers arrive as arguments the function does not declare (its args model refuses them);
    which ones were asked is the run's to check, against the requirement it raised.
    """

    def __init__(self, fn: Callable[..., Any], **options: Any) -> None:
        super().__init__(fn, **options)
        if self.requires_confirmation or self.external_execution:

            raise ToolDefinitionError(f"tool {self.name!r} asks a person already; it takes no other human step")
        # Every call that asks something waits for a person; nothing is hidden from the model: its
        # arguments are the question. (A notification then links to the inbox, never to a bare approve.)
        self.requires_user_input = True
        self.user_input_fields = []

    def user_input_request(self, arguments: dict[str, Any]) -> tuple[dict[str, Any], list[UserInputField]] | None:
        raise NotImplementedError

    def answers(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The person's answers among ``arguments``: what the function does not declare."""
        return {k: v for k, v in arguments.items() if k not in self.args_model.model_fields}

    def check_answers(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """``arguments`` (the model's kept ones and the answers) as JSON-ready values.

        Raises:
            ValueError: with what is wrong, for a person to read.
        """
        return dict(arguments)

    def render_answers(self, arguments: dict[str, Any]) -> str:
        """What the model reads: the answers, as Agno words them."""
        raise NotImplementedError

    def validate_arguments(self, arguments: dict[str, Any], *, context: str) -> dict[str, Any]:
        if not self.answers(arguments):
            return super().validate_arguments(arguments, context=context)
        try:
            checked = self.check_answers(arguments)
        except ValueError as exc:
            raise InvalidDecisionError(f"{context}: answers for tool {self.name!r} are invalid: {exc}") from None
        return pydantic_core.to_jsonable_python(checked)

    async def invoke(
        self, arguments: dict[str, Any], run_context: RunContext | None = None, *, agent: Any = None, team: Any = None
    ) -> str:
        if not self.answers(arguments):  # nothing was asked: the function answers, as in Agno
            return await super().invoke(arguments, run_context, agent=agent, team=team)
        try:
            checked = self.check_answers(arguments)
        except ValueError as exc:
            raise InvalidInputError(f"tool {self.name!r}: answers {exc}") from None
        return self.render_answers(checked)
