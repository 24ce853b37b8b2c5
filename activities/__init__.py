"""Activities: every model call and tool execution of a run. All I/O of a run happens here.

Owns: the model call (``call_model``, a local activity: it also lists a run's MCP tools once), the tool
call (``run_tool``: a local function or an MCP server's tool), the audit mirror into PostgreSQL and the
notifications. May import anything below the client: the agent registry, ``hitl.db``, ``hitl._wire``.
Invariants: retried by Temporal, so each write is idempotent (keyed by what Temporal makes unique);
control flow crosses back as a typed result or a named ``ApplicationError`` type, never as a bare
exception; deterministic errors are non-retryable; no secret in an error message (it reaches history).
"""

from collections.abc import Callable
from typing import Any

from hitl.activities.audit import mirror_approvals
from hitl.activities.model import call_model
from hitl.activities.notify import send_notification
from hitl.activities.tools import run_tool

__all__ = ["call_model", "run_tool", "mirror_approvals", "send_notification", "ALL"]

ALL: list[Callable[..., Any]] = [call_model, run_tool, mirror_approvals, send_notification]
