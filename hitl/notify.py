"""Telling approvers: notifications go out through an activity, never on the decision path.

Register notifiers on the Agent (``Agent(notifiers=[...])``): any async callable taking a
:class:`Notification`, or the built-in :class:`WebhookNotifier` and :class:`EmailNotifier`. A
notifier that fails is retried a few times with backoff, on its own: the notifiers that took the
notification are not called again. Then it is given up on; the run and its audit trail go on
regardless. Notifications are at-least-once: a notifier that failed after sending may send again.

When the worker holds ``HITL_LINK_SECRET`` and ``HITL_PUBLIC_URL``, each notification a notifier
gets carries one-click decision links for each named approver (:attr:`Notification.links`, see
:mod:`hitl.security.links`). They are made inside the notification activity, so they never enter the run's
history; a notifier must not log them either: each is a bearer credential. A retry carries the same
links as the attempt before it, never new ones.

This module is imported by workflow code (through ``hitl._wire``): keep its imports light, and
import I/O libraries (httpx, smtplib) inside the notifiers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import SecretStr

__all__ = ["Notification", "NotificationLink", "Notifier", "WebhookNotifier", "EmailNotifier", "sign"]

from hitl._wire import Notification, NotificationLink  # the contract: payloads of the notify activity
from hitl.errors import ConfigurationError

Notifier = Callable[[Notification], Awaitable[None]]

_TOKEN_PATH = re.compile(r"/links/[^\s\"'?#/]+")


def redact(text: str) -> str:
    """``text`` with every ``/links/<token>`` cut to ``/links/[redacted]`` (for logs and error messages:
    a link is a bearer credential, and a mail server's reply may quote what it was sent)."""
    return _TOKEN_PATH.sub("/links/[redacted]", text)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + HMAC-SHA256 of ``timestamp.body``: what a receiver recomputes to trust a webhook."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


class WebhookNotifier:
    """POSTs each notification as JSON, signed: headers ``X-Hitl-Timestamp`` and ``X-Hitl-Signature``.

    The JSON is :class:`Notification`'s, without ``links`` unless ``include_links``: a receiver
    holding every approver's links could post alice's approve link where bob can click it.

    Args:
        url: Where to POST.
        secret: The HMAC key; it never appears in logs, reprs or history.
        timeout: Seconds for one request.
        include_links: Put ``links`` in the JSON (one bearer credential per approver and decision);
            only for a receiver trusted to hand each link to its own approver alone.
    """

    def __init__(self, url: str, secret: str, *, timeout: float = 10.0, include_links: bool = False) -> None:
        self.url = url
        self._secret = SecretStr(secret)
        self.timeout = timeout
        self.include_links = include_links

    def __repr__(self) -> str:
        return f"WebhookNotifier(url={self.url!r})"

    async def __call__(self, notification: Notification) -> None:
        import httpx

        payload = notification.model_dump(mode="json", exclude=None if self.include_links else {"links"})
        body = json.dumps(payload, sort_keys=True).encode()
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


_SUBJECTS = {"requested": "Approval requested", "reminder": "Reminder: approval waiting",
             "escalated": "Escalated: approval waiting", "expired": "Approval expired"}


def _one_line(text: str, limit: int = 120) -> str:
    # Header values must never carry a line break (header injection); long names are cut.
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


class EmailNotifier:
    """E-mails each approver that has an address, with that approver's own decision links.

    One message per approver (plain text and simple HTML), subject naming the tool and the agent;
    sent with the standard library's ``smtplib`` in a thread. Approvers without an address are
    skipped. A ``group:NAME`` approver gets a message if ``recipients`` gives the group an address,
    but never links (a link is for one person).

    Every message is tried, whatever happens to the others. One the server refuses for good (a 5xx
    answer: no such mailbox, say) is logged and skipped: retrying cannot help it. If any failed for a
    reason that may pass (a 4xx answer, a dropped connection), the call raises once all were tried,
    and the notification activity's retry calls this notifier again (not the others), which sends
    to everyone again, with the same links: notifications are at-least-once.
    A server that cannot be reached or logged into fails the call at once.

    Args:
        host: The SMTP server.
        port: Its port; None: 465 with ``ssl``, else 25 (587 is the usual one for ``starttls``).
        sender: The From address.
        recipients: Approver name -> address, as a mapping or a callable (None: no address). None:
            approver names that look like addresses (``alice@example.com``) are used as they are.
        username: SMTP login, if the server needs one; only with ``starttls`` or ``ssl``.
        password: Its password; it never appears in reprs, logs or history.
        starttls: Upgrade the connection with STARTTLS (certificate checked) before logging in.
        ssl: Speak TLS from the first byte (SMTPS, certificate checked), instead of ``starttls``.
        timeout: Seconds for the connection and each command: well under the 30 s the notification
            activity has in all, so a stuck server fails the attempt rather than the whole budget.

    Raises:
        ConfigurationError: a login without TLS (it would send the password in clear text), or both
            ``starttls`` and ``ssl``.
    """

    def __init__(
        self, host: str, port: int | None = None, sender: str = "hitl@localhost", *,
        recipients: Mapping[str, str] | Callable[[str], str | None] | None = None,
        username: str | None = None, password: str | None = None, starttls: bool = False, ssl: bool = False,
        timeout: float = 10.0,
    ) -> None:

        if starttls and ssl:
            raise ConfigurationError(f"EmailNotifier({host!r}): starttls and ssl are two ways to the same TLS; choose one")
        if (username is not None or password is not None) and not (starttls or ssl):
            raise ConfigurationError(f"EmailNotifier({host!r}): a username or password needs starttls=True or ssl=True, "
                                     "or the password would cross the network in clear text")
        self.host, self.port, self.sender = host, port if port is not None else (465 if ssl else 25), sender
        self.recipients = recipients
        self.username = username
        self._password = SecretStr(password) if password is not None else None
        self.starttls = starttls
        self.ssl = ssl
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"EmailNotifier(host={self.host!r}, port={self.port}, sender={self.sender!r})"

    def address_of(self, approver: str) -> str | None:
        """The approver's e-mail address, or None (then it gets no e-mail)."""
        if self.recipients is None:
            return approver if "@" in approver and not approver.startswith("group:") else None
        if callable(self.recipients):
            return self.recipients(approver) or None
        return self.recipients.get(approver) or None

    def messages(self, notification: Notification) -> list[Any]:
        """The ``email.message.EmailMessage`` for each approver with an address."""
        found = []
        for approver in dict.fromkeys(notification.approvers):
            address = self.address_of(approver)
            if address:
                found.append(self._message(notification, approver, address))
        return found

    async def __call__(self, notification: Notification) -> None:
        import asyncio

        messages = self.messages(notification)
        if messages:
            await asyncio.to_thread(self._send, messages)

    def _connect(self) -> Any:
        import smtplib
        import ssl

        context = ssl.create_default_context()
        smtp = (smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context) if self.ssl
                else smtplib.SMTP(self.host, self.port, timeout=self.timeout))
        try:
            if self.starttls:
                smtp.starttls(context=context)
            if self.username is not None:
                smtp.login(self.username, self._password.get_secret_value() if self._password else "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send(self, messages: list[Any]) -> None:
        import logging
        import smtplib

        log = logging.getLogger("hitl.notify")
        later: list[str] = []  # failures a retry may get past
        smtp = self._connect()  # unreachable, or refusing the login: nothing can go, so fail the attempt now
        try:
            for i, message in enumerate(messages):
                address = str(message["To"])
                if smtp is None:
                    try:
                        smtp = self._connect()
                    except (smtplib.SMTPException, OSError) as exc:  # gone for good: don't wait a timeout per message
                        later += [f"{m['To']}: not sent ({type(exc).__name__})" for m in messages[i:]]
                        break
                try:
                    smtp.send_message(message)
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as exc:
                    # smtplib has reset the transaction: the connection serves the next message.
                    codes = ([code for code, _ in exc.recipients.values()] if isinstance(exc, smtplib.SMTPRecipientsRefused)
                             else [exc.smtp_code])
                    reason = redact(f"{type(exc).__name__} {exc}")[:300]
                    if codes and all(code >= 500 for code in codes):
                        log.warning("e-mail to %s refused for good, skipped: %s", address, reason)
                    else:
                        later.append(f"{address}: {reason}")
                        if 421 in codes:  # the server is closing this connection
                            self._close(smtp)
                            smtp = None
                except (smtplib.SMTPException, OSError) as exc:  # a dropped connection: open another for the rest
                    later.append(f"{address}: {redact(f'{type(exc).__name__} {exc}')[:300]}")
                    self._close(smtp)
                    smtp = None
        finally:
            self._close(smtp)
        if later:
            raise RuntimeError(f"e-mail to {len(later)} of {len(messages)} approvers failed for now: " + "; ".join(later))

    @staticmethod
    def _close(smtp: Any) -> None:
        import smtplib

        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _message(self, n: Notification, approver: str, address: str) -> Any:
        import html
        from datetime import UTC, datetime
        from email.message import EmailMessage

        def when(t: float) -> str:
            return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")

        links = n.links_for(approver)
        arguments = json.dumps(n.arguments, indent=2, sort_keys=True, ensure_ascii=False, default=str)
        facts = [("Agent", n.agent_name), ("Run", n.run_id), ("Approval", f"{n.run_id}/{n.requirement_id}"),
                 ("Tool", n.tool_name), ("Approvers", ", ".join(n.approvers) or "anyone")]
        if n.deadline is not None:
            facts.append(("Deadline", when(n.deadline)))
        if n.escalation_level:
            facts.append(("Escalation level", str(n.escalation_level)))
        expiry = min((link.expires_at for link in n.links if link.approver == approver), default=None)
        note = (f"Each link decides once, as {approver}, and only until {when(expiry)}. It opens a page that asks "
                "you to confirm. Do not forward this e-mail: whoever holds a link can make that decision as you."
                if expiry is not None else "")
        text = [f"{_SUBJECTS[n.kind]}: {n.tool_name} ({n.agent_name})", ""]
        text += [f"{k}: {v}" for k, v in facts] + ["", "Arguments:", arguments, ""]
        text += [f"{label}: {links[d]}" for d, label in (("approved", "Approve"), ("rejected", "Reject")) if d in links]
        text += ["", note] if note else []
        e = html.escape
        rows = "".join(f"<tr><th align='left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
        buttons = " ".join(f"<a href=\"{e(links[d])}\">{label}</a>"
                           for d, label in (("approved", "Approve"), ("rejected", "Reject")) if d in links)
        body = (f"<p><b>{e(_SUBJECTS[n.kind])}</b>: {e(n.tool_name)} ({e(n.agent_name)})</p><table>{rows}</table>"
                f"<pre>{e(arguments)}</pre>" + (f"<p>{buttons}</p><p><small>{e(note)}</small></p>" if buttons else ""))
        message = EmailMessage()
        message["Subject"] = _one_line(f"[hitl] {_SUBJECTS[n.kind]}: {n.tool_name} ({n.agent_name})", 200)
        message["From"] = self.sender
        message["To"] = address
        message.set_content("\n".join(text))
        message.add_alternative(f"<!doctype html><html><body>{body}</body></html>", subtype="html")
        return message
