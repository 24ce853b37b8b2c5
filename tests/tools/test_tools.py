"""@tool turns a function into what the model sees: pure units, no servers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hitl import ToolDefinitionError, tool
from hitl.approval import ApprovalType, approval
from hitl.errors import InvalidDecisionError


def test_schema_comes_from_type_hints_and_the_docstring_args():
    """Types from the hints, descriptions from the Args section, defaults made optional."""

    @tool
    def get_top_hackernews_stories(num_stories: int, section: str = "top") -> str:
        """Fetch top stories from Hacker News.

        Args:
            num_stories: Number of stories
                to retrieve
            section (str): Which list to read.

        Returns:
            JSON string of story details
        """
        return ""

    assert get_top_hackernews_stories.description == "Fetch top stories from Hacker News."
    assert get_top_hackernews_stories.schema == {
        "type": "object",
        "properties": {
            "num_stories": {"type": "integer", "description": "Number of stories to retrieve"},
            "section": {"type": "string", "description": "Which list to read.", "default": "top"},
        },
        "required": ["num_stories"],
    }


def test_user_input_fields_are_hidden_from_the_model():
    """Fields a person provides are not in the schema the model sees."""

    @tool(requires_user_input=True, user_input_fields=["time"])
    def book(date: str, time: str) -> str:
        """Book."""
        return ""

    assert list(book.schema["properties"]) == ["date"] and book.schema["required"] == ["date"]


def test_requires_user_input_without_fields_asks_for_all():
    """With no user_input_fields, every argument is asked of a person."""

    @tool(requires_user_input=True)
    def book(date: str, time: str) -> str:
        """Book."""
        return ""

    assert book.user_input_fields == ["date", "time"] and book.schema["properties"] == {}


def test_unknown_user_input_field_is_refused():
    """A user_input_fields entry that is no argument is a definition error naming it."""
    with pytest.raises(ToolDefinitionError, match="'when'"):

        @tool(requires_user_input=True, user_input_fields=["when"])
        def book(date: str) -> str:
            return ""


def test_conflicting_flags_and_bad_options_are_refused():
    """One human flag per tool; attempts and timeouts must make sense."""
    with pytest.raises(ToolDefinitionError, match="choose one"):
        tool(requires_confirmation=True, external_execution=True)(lambda x: x)
    with pytest.raises(ToolDefinitionError, match="max_attempts"):
        tool(max_attempts=0)(lambda x: x)
    with pytest.raises(ToolDefinitionError, match="timeout"):
        tool(timeout=timedelta(0))(lambda x: x)


def test_confirmation_rule_is_a_predicate_over_arguments():
    """requires_confirmation may be a predicate deciding per call."""

    @tool(requires_confirmation=lambda args: args["amount"] > 1000)
    def transfer(amount: float) -> str:
        return ""

    assert transfer.needs_confirmation({"amount": 5000}) and not transfer.needs_confirmation({"amount": 50})


def test_validate_arguments_names_the_failing_field():
    """Validation errors say which tool and field, prefixed by the context."""

    @tool
    def pay(amount: int) -> str:
        return ""

    with pytest.raises(InvalidDecisionError, match=r"run X: arguments for tool 'pay' are invalid: amount"):
        pay.validate_arguments({"amount": "lots"}, context="run X")


def test_approval_stacks_with_tool_in_either_order():
    """@approval above or below @tool marks the same tool and keeps its options."""

    @approval
    @tool(requires_confirmation=True)
    def a(x: int) -> str:
        return ""

    @tool(requires_confirmation=True, timeout=timedelta(seconds=7))
    @approval(type=ApprovalType.audit)
    def b(x: int) -> str:
        return ""

    @approval
    def c(x: int) -> str:
        return ""

    assert a.approval is ApprovalType.required and a.requires_confirmation
    assert b.approval is ApprovalType.audit and b.timeout == timedelta(seconds=7)
    assert c.approval is ApprovalType.required and c.requires_confirmation


def test_tool_stays_callable():
    """A decorated function can still be called directly."""

    @tool
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
