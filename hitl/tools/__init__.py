"""Tools a model may call: ``@tool`` (``decorator``), toolkits (``toolkit``), and Agno's toolkits and MCP servers
in their own modules (``mcp``, ``user_control_flow``, ``user_feedback``, ``websearch``, ``wikipedia``)."""

from hitl.tools.decorator import ConfirmationRule, Tool, as_tool, reserve_tool_threads, tool
from hitl.tools.toolkit import Toolkit, expand_tools

__all__ = ["Tool", "tool", "ConfirmationRule", "Toolkit", "as_tool", "expand_tools", "reserve_tool_threads"]
