"""Sending notifications to an agent's notifiers, with one-click decision links made here.

Links are bearer credentials: they are made in this activity (from ``HITL_LINK_SECRET`` and
``HITL_PUBLIC_URL``, read once by ``hitl.links.settings``), handed to the notifiers, and never
returned, so the run's history holds the notification without them; error messages that go back
to the run are stripped of them too.
"""

from __future__ import annotations

import logging

from temporalio import activity
from temporalio.exceptions import ApplicationError

from hitl import links
from hitl.activities._agents import agent_named
from hitl._wire import NOTIFY, NotifyRequest
from hitl.errors import ConfigurationError

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


@activity.defn(name=NOTIFY)
async def send_notification(request: NotifyRequest) -> None:
    """Call every notifier; if any fails, fail (Temporal retries a few times, then the run gives up).

    A retry makes new links: every attempt's links work until one of them decides.
    """
    agent = agent_named(request.agent_name)
    notifiers = agent.notifiers
    notification = request.notification
    tool = agent.tools.get(notification.tool_name)
    # A click can approve a confirmation; input to fill or a result to give needs the inbox (or the API).
    needs_more = tool is not None and (tool.requires_user_input or tool.external_execution)
    made = links.links_for(notification, _link_settings(), decisions=("rejected",) if needs_more else ("approved", "rejected")) \
        if notifiers else []
    if made:
        notification = notification.model_copy(update={"links": made})
    failures = []
    for notifier in notifiers:
        try:
            await notifier(notification)
        except Exception as exc:  # one notifier's failure must not stop the others
            failures.append(f"{notifier!r}: {type(exc).__name__}: {exc}")
    if failures:
        # The message enters the run's history: a notifier quoting its links there would leak them.
        raise ApplicationError(links.redact("notifiers failed: " + "; ".join(failures)), type="NotifierFailed")
