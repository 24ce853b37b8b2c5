"""Agno's import path for :class:`hitl.Team` (``from agno.team.team import Team``)."""

from hitl.team import DELEGATE_TOOL, Team

__all__ = ["Team", "DELEGATE_TOOL"]
