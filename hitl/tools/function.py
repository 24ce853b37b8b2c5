"""Agno's ``agno.tools.function`` names: ``UserInputField`` (a field of a user-input requirement's
``user_input_schema``), ``UserFeedbackQuestion`` and ``UserFeedbackOption`` (a user-feedback
requirement's ``user_feedback_schema``) and ``Function`` (what ``@tool`` returns: hitl's
:class:`~hitl.tools.Tool`)."""

from __future__ import annotations

from hitl.run import UserFeedbackOption, UserFeedbackQuestion, UserInputField
from hitl.tools.decorator import Tool

__all__ = ["Function", "UserInputField", "UserFeedbackQuestion", "UserFeedbackOption"]

Function = Tool
"""Agno's name for a tool: ``name``, ``description`` and ``entrypoint`` (the wrapped function)."""
