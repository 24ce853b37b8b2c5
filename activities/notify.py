"""Sending notifications to an agent's notifiers, with one-click decision links made here.

Links are bearer credentials: they are made in this activity (from ``HITL_LINK_SECRET`` and
``HITL_PUBLIC_URL``, read once by ``hitl.security.links.settings``), handed to the notifiers, and never
returned, so the run's history holds the notification without them; error messages that go back
to the run are stripped of them too.

Each notifier is retried on its own: one that has taken the notification is recorded in the
attempt's heartbeat details (its name, nothing of the notification), and Temporal's retry of the
activity calls only the others. The links are the same on every attempt (``links.links_for`` keyed
by this activity's identity), so a retry resends the links it sent, never new valid ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from hitl._wire import NOTIFY, NotifyRequest
from hitl.activities._agents import agent_named
from hitl.errors import ConfigurationError
from hitl.security import links

log = logging.getLogger("hitl.notify")
_warned = False


def _link_settings() -> links.LinkSettings:
    """This worker's link settings, or none when they are bad.

    ``hitl worker`` refuses bad ones at start; a worker built in code meets them here, and a
    notification without links still tells the approvers, where failing would tell no one.
    """
    global _warned
    try:
        return links.settings()
    except ConfigurationError as exc:
        if not _warned:  # once per process, not once per notification
            _warned = True
            log.warning("notifications go out without one-click links: %s", exc)
        return links.LinkSettings()


def notifier_name(index: int, notifier: Any) -> str:
    """How an attempt's heartbeat names a notifier that has taken the notification: its place among the
    agent's notifiers and its function's or class's name (never its repr: a function's holds an address
    that differs between processes, and a notifier's may hold anything)."""
    return f"{index}:{getattr(notifier, '__qualname__', None) or type(notifier).__qualname__}"


def _delivered(details: Sequence[Any]) -> list[str]:
    """The notifiers earlier attempts recorded as done (the newest heartbeat's details)."""
    names = details[0] if details else []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


@activity.defn(name=NOTIFY)
async def send_notification(request: NotifyRequest) -> None:
    """Call each notifier that has not taken this notification yet; if any fails, fail.

    Temporal retries the activity a few times (the workflow's ``NOTIFY_RETRY``), then the run gives
    up on it. A retry calls only the notifiers that failed, with the same links as before.
    """
    agent = agent_named(request.agent_name)
    notifiers = agent.notifiers
    notification = request.notification
    info = activity.info()
    done = _delivered(info.heartbeat_details)
    tool = agent.tools.get(notification.tool_name)
    # A click can approve a confirmation; input to fill or a result to give needs the inbox (or the API).
    needs_more = tool is not None and (tool.requires_user_input or tool.external_execution)
    # This activity's identity is the notification's (attempts share it): the links are the same on every attempt.
    key = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"
    made = links.links_for(notification, _link_settings(), decisions=("rejected",) if needs_more else ("approved", "rejected"),
                           key=key) if notifiers else []
    if made:
        notification = notification.model_copy(update={"links": made})
    failures = []
    for index, notifier in enumerate(notifiers):
        name = notifier_name(index, notifier)
        if name in done:  # an earlier attempt delivered it
            continue
        try:
            await notifier(notification)
        except Exception as exc:  # one notifier's failure must not stop the others
            failures.append(f"{notifier!r}: {type(exc).__name__}: {exc}")
        else:
            done.append(name)
            activity.heartbeat(list(done))  # names only: heartbeat details can reach the run's history
    if failures:
        # The message enters the run's history: a notifier quoting its links there would leak them.
        raise ApplicationError(links.redact("notifiers failed: " + "; ".join(failures)), type="NotifierFailed")
