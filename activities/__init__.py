"""Activities: every model call and tool execution of a run. All I/O of a run happens here."""

from collections.abc import Callable
from typing import Any

from hitl.activities.audit import mirror_approvals
from hitl.activities.model import call_model
from hitl.activities.notify import send_notification
from hitl.activities.tools import run_tool

__all__ = ["call_model", "run_tool", "mirror_approvals", "send_notification", "ALL"]

ALL: list[Callable[..., Any]] = [call_model, run_tool, mirror_approvals, send_notification]
