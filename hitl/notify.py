"""Telling approvers: notifications go out through an activity, never on the decision path.

Register notifiers on the Agent (``Agent(notifiers=[...])``): any async callable taking a
:class:`Notification`, or the built-in :class:`WebhookNotifier`. A
notifier that fails is retried a few times with backoff, then given up on; the run and its audit
trail go on regardless. Notifications are at-least-once: a retry may repeat one.

When the worker holds ``HITL_LINK_SECRET`` and ``HITL_PUBLIC_URL``, each notification a notifier
gets carries one-click decision links for each named approver (:attr:`Notification.links`, see
:mod:`hitl.links`). They are made inside the notification activity, so they never enter the run's
history; a notifier must not log them either: each is a bearer credential.

This module is imported by workflow code (through ``hitl._wire``): keep its imports light, and
import I/O libraries (httpx, smtplib) inside the notifiers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr

__all__ = ["Notification", "NotificationLink", "Notifier", "WebhookNotifier", "sign"]


class NotificationLink(BaseModel):
    """A one-click decision link for one approver and one decision (a bearer credential: never log it)."""

    approver: str
    decision: Literal["approved", "rejected"]
    url: str = Field(repr=False)
    expires_at: float


class Notification(BaseModel):
    """What happened to a pending approval, for the people who may decide it."""

    kind: Literal["requested", "reminder", "escalated", "expired"]
    run_id: str
    agent_name: str
    requirement_id: str
    tool_name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    approvers: list[str] = Field(default_factory=list)
    deadline: float | None = None
    escalation_level: int = 0
    at: float
    links: list[NotificationLink] = Field(default_factory=list, repr=False)
    """Per named approver, an approve and a reject link; empty without a link secret, for ``group:``
    approvers and on ``expired``. Set by the notification activity only: a run's history never
    holds them (the field has a default, so histories recorded before it still decode)."""

    def links_for(self, approver: str) -> dict[str, str]:
        """The approver's link URLs by decision (``approved``, ``rejected``); empty when it has none."""
        return {link.decision: link.url for link in self.links if link.approver == approver}


Notifier = Callable[[Notification], Awaitable[None]]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + HMAC-SHA256 of ``timestamp.body``: what a receiver recomputes to trust a webhook."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


class WebhookNotifier:
    """POSTs each notification as JSON, signed: headers ``X-Hitl-Timestamp`` and ``X-Hitl-Signature``.

    The JSON is :class:`Notification`'s, ``links`` included: the receiver holds bearer credentials
    (one per approver and decision) and should hand each only to its approver.

    Args:
        url: Where to POST.
        secret: The HMAC key; it never appears in logs, reprs or history.
        timeout: Seconds for one request.
    """

    def __init__(self, url: str, secret: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self._secret = SecretStr(secret)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"WebhookNotifier(url={self.url!r})"

    async def __call__(self, notification: Notification) -> None:
        import httpx

        body = json.dumps(notification.model_dump(mode="json"), sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "x-hitl-timestamp": timestamp,
            "x-hitl-signature": sign(self._secret.get_secret_value(), timestamp, body),
        }
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self.url, content=body, headers=headers)
        if response.status_code >= 300:
            raise RuntimeError(f"webhook {self.url} answered HTTP {response.status_code}")

