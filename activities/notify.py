"""Sending notifications to an agent's notifiers."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from hitl.activities._agents import agent_named
from hitl._wire import NOTIFY, NotifyRequest


@activity.defn(name=NOTIFY)
async def send_notification(request: NotifyRequest) -> None:
    """Call every notifier; if any fails, fail (Temporal retries a few times, then the run gives up)."""
    failures = []
    for notifier in agent_named(request.agent_name).notifiers:
        try:
            await notifier(request.notification)
        except Exception as exc:  # one notifier's failure must not stop the others
            failures.append(f"{notifier!r}: {type(exc).__name__}: {exc}")
    if failures:
        raise ApplicationError("notifiers failed: " + "; ".join(failures), type="NotifierFailed")
