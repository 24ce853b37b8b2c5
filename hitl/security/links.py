"""One-click decision links: for one approver, one decision, one approval, once, for a short while.

A link is ``{HITL_PUBLIC_URL}/links/{token}``. The token is an HS256 JWT, keyed by
``HITL_LINK_SECRET``, over the approval (``<run_id>/<requirement_id>``), its run and requirement,
the decision (``approved`` or ``rejected``), the digest of the arguments it asks about (the audit
record's ``arguments_digest``), the approver, an expiry and an id. Whoever holds it can make that
one decision as that approver: it is a bearer credential, like a password reset link.

Links are made by the notification activity on the worker (:func:`links_for`), handed to the
notifiers and never returned: they never reach a run's history, the audit trail or a log. The
decision service (``hitl.service.links``) shows a link on GET and decides on POST, once: the link's
id is recorded in ``<approvals_table>_links`` (:func:`claim`).

A link is a function of its notification: the id is an HMAC (keyed by the secret) of the approval,
the approver, the decision and the notification, and the token is dated by the notification's own
time. So a notification sent again (a retried activity) carries the very links it carried before,
never new valid ones, and one click uses them up wherever they were delivered.

``group:NAME`` approvers get no link (a link proves one person, and hitl knows a user's groups,
not a group's members); name the people, or let them decide in the inbox.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import jwt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from hitl._wire import digest  # what the audit record's arguments_digest is made with
from hitl.errors import (  # the link errors live with the others in hitl.errors; they stay importable from here too
    ConfigurationError,
    LinkExpiredError,
    LinkInvalidError,
    LinkUsedError,
)
from hitl.identity import reserved_prefix
from hitl.notify import Notification, NotificationLink, redact
from hitl.settings import environment
from hitl.store import links as _store

if TYPE_CHECKING:
    from hitl.store.database import Database

__all__ = ["LinkSettings", "LinkClaims", "LinkExpiredError", "LinkInvalidError", "LinkUsedError", "configure",
           "settings", "make_token", "verify_token", "link_id", "links_for", "claim", "release", "used", "redact",
           "check_secret", "MIN_SECRET_BYTES"]

_ALGORITHM = "HS256"
_AUDIENCE = "hitl-link"  # keeps a link token from passing for any other JWT made with the same secret
DEFAULT_TTL_SECONDS = 24 * 3600.0
MIN_SECRET_BYTES = 32
SECRET_ADVICE = (f"HITL_LINK_SECRET must be at least {MIN_SECRET_BYTES} bytes of random text; make one with "
                 "python -c \"import secrets; print(secrets.token_urlsafe(32))\"")


def check_secret(secret: str) -> str:
    """``secret`` if it is long enough to key links with (HS256 is only as strong as its key).

    Raises:
        ValueError: shorter than :data:`MIN_SECRET_BYTES` (the message never quotes the secret).
    """
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"{SECRET_ADVICE} (the one given is shorter)")
    return secret


class LinkSettings(BaseModel):
    """What a worker makes links with.

    Environment: ``HITL_LINK_SECRET`` (the HMAC key, at least 32 bytes; the service holds the same one),
    ``HITL_PUBLIC_URL`` (where people reach the service), ``HITL_LINK_TTL`` (how long a link
    lasts: seconds, or ``90m``, ``24h``, ``7d``; default 24 h; never past the approval's deadline).
    Without a secret or a URL, notifications carry no links.
    """

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)  # an error must not quote the secret

    secret: SecretStr | None = None
    public_url: str | None = None
    ttl_seconds: float = Field(default=DEFAULT_TTL_SECONDS, gt=0, le=30 * 24 * 3600)

    @field_validator("secret")
    @classmethod
    def _strong_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value())
        return value

    @classmethod
    def from_env(cls) -> LinkSettings:
        """Read from the environment.

        Raises:
            ConfigurationError: ``HITL_LINK_SECRET`` shorter than 32 bytes; ``HITL_LINK_TTL`` that is
                not a duration, or out of range.
        """
        env = environment().named()
        secret = env.get("HITL_LINK_SECRET") or None
        try:
            if secret is not None:
                check_secret(secret)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        try:
            return cls(secret=SecretStr(secret) if secret is not None else None,
                       public_url=env.get("HITL_PUBLIC_URL") or None,
                       ttl_seconds=_seconds(env.get("HITL_LINK_TTL") or str(DEFAULT_TTL_SECONDS)))
        except (ValueError, ValidationError) as exc:
            raise ConfigurationError(f"HITL_LINK_TTL={env.get('HITL_LINK_TTL')!r}: not a duration of up to 30 days "
                                     f"(seconds, or 90m, 24h, 7d): {exc}") from None

    @property
    def enabled(self) -> bool:
        return self.secret is not None and bool(self.public_url)


def _seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


_settings: LinkSettings | None = None


def configure(value: LinkSettings | None) -> None:
    """Set this process's link settings from code; None reads the environment again at the next use."""
    global _settings
    _settings = value


def settings() -> LinkSettings:
    """This process's link settings: what :func:`configure` set, else the environment, read once."""
    global _settings
    if _settings is None:
        _settings = LinkSettings.from_env()
    return _settings


class LinkClaims(BaseModel):
    """What a link says: who may make which decision on which approval, until when."""

    model_config = ConfigDict(frozen=True)

    approval_id: str
    run_id: str
    requirement_id: str
    decision: Literal["approved", "rejected"]
    arguments_digest: str
    approver: str = Field(min_length=1, max_length=256)
    expires_at: float
    link_id: str


def make_token(secret: str, claims: LinkClaims, *, issued_at: float | None = None) -> str:
    """The signed token of a link (what follows ``/links/`` in its URL); ``issued_at`` (default now)
    dates it: the same claims and date make the same token."""
    payload = {"aud": _AUDIENCE, "aid": claims.approval_id, "run": claims.run_id, "req": claims.requirement_id,
               "dec": claims.decision, "args": claims.arguments_digest, "sub": claims.approver,
               "exp": int(claims.expires_at), "iat": int(time.time() if issued_at is None else issued_at),
               "jti": claims.link_id}
    return jwt.encode(payload, secret, algorithm=_ALGORITHM)


def verify_token(secret: str, token: str) -> LinkClaims:
    """The claims of a link this secret made, checked against the clock.

    Raises:
        LinkExpiredError: past its expiry (the message says when that was).
        LinkInvalidError: anything else: malformed, tampered, another secret, claims missing.
    """
    if len(token) > 4096:
        raise LinkInvalidError("this link is not one this service made (too long)")
    try:
        data = jwt.decode(token, secret, algorithms=[_ALGORITHM], audience=_AUDIENCE,
                          options={"require": ["exp", "jti", "sub", "aid"]})
        return LinkClaims(approval_id=data["aid"], run_id=data["run"], requirement_id=data["req"], decision=data["dec"],
                          arguments_digest=data["args"], approver=data["sub"], expires_at=float(data["exp"]),
                          link_id=data["jti"])
    except jwt.ExpiredSignatureError:
        expired = jwt.decode(token, secret, algorithms=[_ALGORITHM], audience=_AUDIENCE, options={"verify_exp": False})
        at = datetime.fromtimestamp(float(expired.get("exp", 0)), UTC).isoformat(timespec="seconds")
        raise LinkExpiredError(f"this link to approval {str(expired.get('aid'))[:200]!r} expired at {at}") from None
    except (jwt.PyJWTError, KeyError, TypeError, ValueError, ValidationError):
        raise LinkInvalidError("this link is not one this service made: it was changed, cut short, or signed "
                               "with another key") from None


def link_id(secret: str, approval_id: str, approver: str, decision: str, notification: str) -> str:
    """The id of the link for this approver and decision in this notification: an HMAC, so no one
    without the secret can tell one from another's, and the same four always give the same id."""
    message = "\0".join(("hitl-link-id", approval_id, approver, decision, notification)).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def links_for(notification: Notification, link_settings: LinkSettings, *, now: float | None = None,
              decisions: tuple[Literal["approved", "rejected"], ...] = ("approved", "rejected"),
              key: str = "") -> list[NotificationLink]:
    """An approve and a reject link for each named approver of a notified approval (worker side);
    ``decisions=("rejected",)`` for one a click cannot complete (a form to fill, a result to give).

    None on ``expired``, without settings, for reserved approvers (``group:``, ``system:``, ``policy:``:
    ``hitl.identity.RESERVED_PREFIXES``), or once the deadline has passed. A link lasts
    ``ttl_seconds`` from the notification's ``at``, never past the deadline.

    The links are a function of the notification, ``key`` (what else identifies it: the notification
    activity passes its own id) and the settings: called again for a retry, it gives the same links,
    so a retried notification never mints new valid ones.
    """
    if notification.kind == "expired" or not link_settings.enabled or link_settings.secret is None:
        return []

    now = time.time() if now is None else now
    expires = notification.at + link_settings.ttl_seconds
    if notification.deadline is not None:
        expires = min(expires, notification.deadline)
    if expires <= now:
        return []
    secret = link_settings.secret.get_secret_value()
    base = (link_settings.public_url or "").rstrip("/")
    approval_id = f"{notification.run_id}/{notification.requirement_id}"
    arguments = digest(notification.arguments)
    # The notification's identity: the run's clock when it was made, its kind and level, and the caller's key.
    identity = "\0".join((notification.kind, repr(notification.at), str(notification.escalation_level), key))
    found = []
    for approver in dict.fromkeys(notification.approvers):
        if reserved_prefix(approver) is not None:  # a group is no one person; system: and policy: no one at all
            continue
        for decision in decisions:
            claims = LinkClaims(approval_id=approval_id, run_id=notification.run_id,
                                requirement_id=notification.requirement_id, decision=decision,
                                arguments_digest=arguments, approver=approver, expires_at=expires,
                                link_id=link_id(secret, approval_id, approver, decision, identity))
            token = make_token(secret, claims, issued_at=notification.at)
            found.append(NotificationLink(approver=approver, decision=claims.decision, url=f"{base}/links/{token}",
                                          expires_at=int(expires)))
    return found


async def used(db: Database, link_id: str) -> bool:
    """Whether the link has been used (its decision made, or being made now)."""
    return await _store.used(db, link_id)


async def claim(db: Database, claims: LinkClaims) -> bool:
    """Mark the link used before it decides; False when it already was (by this request's twin, say).

    Rows of links expired a day ago go: their tokens are refused by their expiry anyway.
    """
    return await _store.claim(db, link_id=claims.link_id, approval_id=claims.approval_id, approver=claims.approver,
                             decision=claims.decision, expires_at=claims.expires_at)


async def release(db: Database, link_id: str) -> None:
    """Make a used link usable again: its decision failed for a reason a retry may not meet."""
    await _store.release(db, link_id)
