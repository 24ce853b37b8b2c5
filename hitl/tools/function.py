"""Agno's ``agno.tools.function`` names: ``UserInputField`` (a field of a user-input requirement's
``user_input_schema``) and ``Function`` (what ``@tool`` returns: hitl's :class:`~hitl.tools.Tool`)."""

from __future__ import annotations

from hitl.run import UserInputField
from hitl.tools import Tool

__all__ = ["Function", "UserInputField"]

Function = Tool
"""Agno's name for a tool: ``name``, ``description`` and ``entrypoint`` (the wrapped function)."""
