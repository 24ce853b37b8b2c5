"""``UserFeedbackTools`` (Agno's ``agno.tools.user_feedback``): the model asks the person to choose
among options it offers.

Its tool ``ask_user(questions)`` takes a list of :class:`AskUserQuestion` (``question``, ``header``,
``options`` of :class:`AskUserOption` ``label``/``description``, ``multi_select``). The call pauses the
run with a user-feedback requirement: ``requirement.needs_user_feedback`` is True and
``requirement.user_feedback_schema`` lists the questions (:class:`~hitl.run.UserFeedbackQuestion`);
``requirement.provide_user_feedback({question: [labels]})`` answers them, and the model reads
``User feedback received: [{"question": ..., "selected": [...]}, ...]``, as in Agno.

Underneath it is a user-input requirement: its ``user_input_schema`` holds the model's questions
(:data:`~hitl.run.FEEDBACK_FIELD`, which marks it) and one field per question, by its text, for the
labels chosen; the run checks the answers against the questions before the model reads them.
"""

from __future__ import annotations

import json
from textwrap import dedent
from typing import Any

import pydantic
from pydantic import BaseModel, Field

from hitl.errors import InvalidInputError
from hitl.run import FEEDBACK_FIELD, FEEDBACK_FIELD_TYPE, UserFeedbackQuestion, UserInputField, feedback_problem
from hitl.tools._asking import AskingTool
from hitl.tools.toolkit import Toolkit

__all__ = ["UserFeedbackTools", "AskUserQuestion", "AskUserOption", "AskUserTool"]


class AskUserOption(BaseModel):
    """One option the user may choose."""

    label: str = Field(..., description="What the user sees and picks: a few words (1-5).")
    description: str | None = Field(None, description="What choosing this option means.")


class AskUserQuestion(BaseModel):
    """A question for the user, with the options to choose from."""

    question: str = Field(..., description="The question itself, ending with a question mark.")
    header: str = Field(..., description="A short title for the question (12 characters at most), e.g. 'Destination'.")
    options: list[AskUserOption] = Field(..., description="The options to choose from: 2 to 4 of them.")
    multi_select: bool = Field(False, description="True when the user may choose several options.")


class _Questions(BaseModel):
    questions: list[AskUserQuestion]


def _problems(exc: pydantic.ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}" for e in exc.errors())


class AskUserTool(AskingTool):
    """``ask_user``: the model's questions become a user-feedback requirement; the labels chosen are the result."""

    def user_input_request(self, arguments: dict[str, Any]) -> tuple[dict[str, Any], list[UserInputField]] | None:
        try:
            given = _Questions.model_validate(arguments).model_dump(mode="json")
        except pydantic.ValidationError as exc:
            raise InvalidInputError(f"The call was not made: its arguments are invalid: {_problems(exc)}") from None
        questions = given["questions"]
        if not questions:
            return None  # nothing to ask: the function runs (as Agno, which pauses only for some questions)
        texts: list[str] = []
        for i, q in enumerate(questions):
            text, where = q["question"], f"questions[{i}]"
            if not text.strip():
                raise InvalidInputError(f"The call was not made: {where} has no question text")
            if text == FEEDBACK_FIELD:
                raise InvalidInputError(f"The call was not made: {where}: {text!r} cannot be a question; reword it")
            if text in texts:
                raise InvalidInputError(f"The call was not made: {where}: the question {text!r} is asked twice; ask it once")
            labels = [o["label"] for o in q["options"]]
            twice = sorted({label for label in labels if labels.count(label) > 1})
            if twice:
                raise InvalidInputError(f"The call was not made: {where}: the options {twice} appear twice; give distinct labels")
            texts.append(text)
        schema = [UserInputField(name=FEEDBACK_FIELD, field_type=FEEDBACK_FIELD_TYPE,
                                 description="The questions asked (the model's).", value=questions)]
        for q in questions:
            choices = ", ".join(o["label"] for o in q["options"])
            how = "any of" if q["multi_select"] else "one of"
            schema.append(UserInputField(name=q["question"], field_type="list[str]",
                                         description=f"{q['header']}: choose {how} {choices} (a list of labels)"))
        return given, schema

    def check_answers(self, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            questions = _Questions.model_validate({FEEDBACK_FIELD: arguments.get(FEEDBACK_FIELD)}).model_dump(mode="json")
        except pydantic.ValidationError as exc:
            raise ValueError(f"the questions are invalid: {_problems(exc)}") from None
        asked = [UserFeedbackQuestion.from_dict(q) for q in questions[FEEDBACK_FIELD]]
        answers = self.answers(arguments)
        problem = feedback_problem(asked, answers)
        if problem is not None:
            raise ValueError(problem)
        missing = [q.question for q in asked if q.question not in answers]
        if missing:
            raise ValueError(f"the questions {missing} have no answer")
        return {**questions, **answers}

    def render_answers(self, arguments: dict[str, Any]) -> str:
        answers = self.answers(arguments)
        chosen = [{"question": q["question"], "selected": answers.get(q["question"]) or []}
                  for q in arguments[FEEDBACK_FIELD]]
        return f"User feedback received: {json.dumps(chosen, ensure_ascii=False)}"


class UserFeedbackTools(Toolkit):
    """Lets the model ask the person to choose among options (Agno's ``UserFeedbackTools``).

    Args:
        instructions: How the model should use ``ask_user``; :attr:`DEFAULT_INSTRUCTIONS` when None.
        add_instructions: Whether the instructions are meant for the system message (as Agno's).
        **kwargs: The :class:`~hitl.tools.Toolkit`'s (``include_tools``, ``exclude_tools``...).
    """

    DEFAULT_INSTRUCTIONS = dedent("""\
        The `ask_user` tool asks the user structured questions, each with options to choose from.

        ## When and how
        - Call `ask_user` when the user should pick among specific choices.
        - Give each question a short `header`, the `question` itself, and its `options`.
        - Give each option a `label`, and a `description` if it helps.
        - Set `multi_select` to true when the user may pick more than one option.

        ## Rules
        - Offer 2 to 4 options per question.
        - Keep headers short: 12 characters at most.
        - Ask clear, specific questions, each ending with a question mark.
        - Use `multi_select: true` only when the options do not exclude each other.
        """)

    def __init__(self, instructions: str | None = None, add_instructions: bool = True, **kwargs: Any) -> None:
        self.instructions = self.DEFAULT_INSTRUCTIONS if instructions is None else instructions
        super().__init__(name="user_feedback_tools", instructions=self.instructions, add_instructions=add_instructions,
                         tools=[AskUserTool(self.ask_user)], **kwargs)

    def ask_user(self, questions: list[AskUserQuestion]) -> str:
        """Ask the user structured questions, each with options to choose from.

        Args:
            questions: The questions for the user, each with a header, the question text and its options.
        """
        # Called only when no question is asked: a call with questions pauses the run, and its result is the answers.
        return "User feedback received"
