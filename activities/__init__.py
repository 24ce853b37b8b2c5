"""Activities: every model call and tool execution of a run. All I/O of a run happens here."""

from collections.abc import Callable
from typing import Any

from activities.audit import mirror_approvals
from activities.model import call_model
from activities.tools import run_tool

__all__ = ["call_model", "run_tool", "mirror_approvals", "ALL"]

ALL: list[Callable[..., Any]] = [call_model, run_tool, mirror_approvals]
