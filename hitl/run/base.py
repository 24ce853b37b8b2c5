"""What a tool or hook may ask for by declaring a ``run_context`` parameter (Agno's ``RunContext``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunContext"]


@dataclass
class RunContext:
    """The run a tool call or hook belongs to.

    A tool that declares ``run_context: RunContext`` gets it filled in (the parameter is hidden
    from the model). ``dependencies`` are the ones given to ``run``/``continue_run`` or the agent;
    ``session_state`` is the session's state, and changes a tool makes to it are kept.
    """

    run_id: str
    session_id: str | None = None
    user_id: str | None = None
    dependencies: dict[str, Any] | None = None
    session_state: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    knowledge_filters: dict[str, Any] | None = None
    workflow_id: str | None = None
    workflow_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
