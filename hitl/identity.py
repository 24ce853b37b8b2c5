"""Who is calling: the principal a credential proves, and the scopes it holds.

An identity is what a credential proves (an API token's recorded principal, an OIDC token's
subject, a link's approver, a Slack user's mapped principal), never a name the caller typed.
Every decision the service forwards is made as it.

Some names mean something to an approval's policy and its trail, so no credential may prove them
(:data:`RESERVED_PREFIXES`): ``group:NAME`` is a group's members, ``system:timeout`` the deadline's
own decision, ``policy:audit`` a call an audit-only policy let through.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from hitl.errors import InvalidInputError

__all__ = ["Principal", "Scope", "SCOPES", "RESERVED_PREFIXES", "reserved_prefix", "check_principal_name",
           "check_approver_name"]

Scope = Literal["approvals:read", "approvals:decide", "runs:start", "runs:read", "runs:cancel",
                "payloads:decode", "metrics:read", "admin"]
SCOPES: tuple[str, ...] = get_args(Scope)
"""Every scope a token may hold. ``admin`` implies all the others. ``payloads:decode``: use the codec
server (``/codec/decode``, ``/codec/encode``), i.e. read encrypted runs' arguments in clear.
``metrics:read``: scrape ``hitl serve``'s ``/metrics``."""

RESERVED_PREFIXES: tuple[str, ...] = ("group:", "system:", "policy:")
"""Prefixes no principal's name may start with (compared without case or surrounding spaces).
``group:`` names a group in an approver list (only membership satisfies it), ``system:`` and
``policy:`` the deciders hitl itself records (``system:timeout``, ``policy:audit``)."""

_WHY = {"group:": "names a group's members in approver lists, which only membership may satisfy",
        "system:": "is how the trail records decisions hitl makes itself (the deadline's system:timeout)",
        "policy:": "is how the trail records calls a policy let through (policy:audit)"}


def reserved_prefix(name: str) -> str | None:
    """The reserved prefix ``name`` starts with, if any."""
    folded = name.strip().casefold()
    return next((p for p in RESERVED_PREFIXES if folded.startswith(p)), None)


def check_principal_name(name: str, where: str) -> str:
    """``name`` if a credential may prove it: it must not start with a reserved prefix.

    Args:
        name: The principal's name.
        where: What is being checked, for the message (``token principal``, ``HITL_SLACK_USERS``...).

    Raises:
        InvalidInputError: the name starts with ``group:``, ``system:`` or ``policy:``.
    """
    prefix = reserved_prefix(name)
    if prefix is not None:
        raise InvalidInputError(f"{where} {name[:60]!r} is reserved: a name starting {prefix!r} {_WHY[prefix]}; "
                                "give the principal a name of its own")
    return name


def check_approver_name(name: str, where: str) -> str:
    """``name`` if it may be an approver: a principal's name or ``group:NAME``, never ``system:`` or ``policy:``.

    Raises:
        InvalidInputError: a reserved name other than ``group:NAME``.
    """
    if name.startswith("group:") and len(name) > len("group:"):
        return name
    return check_principal_name(name, where)


class Principal(BaseModel):
    """An authenticated caller.

    Attributes:
        name: The identity: an API token's principal or an OIDC token's subject. Decisions are
            recorded as made by it (``resolved_by``).
        scopes: What it may do at all; who may decide a given approval is that approval's policy.
        groups: Its groups, from an OIDC claim (used to list what waits for it: ``approver=me``).
        via: How it was proven: ``token`` (an API token), ``oidc`` (an OIDC bearer token), ``link``
            (a one-click decision link, ``hitl.security.links``) or ``slack`` (a signed Slack action whose user
            ``HITL_SLACK_USERS`` maps to it).
        credential_id: The API token's id (never its secret), the JWT's ``jti`` when it has one,
            ``link:<link id>`` or ``slack:<Slack user id>``.
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=256)
    scopes: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    via: Literal["token", "oidc", "link", "slack"] = "token"
    credential_id: str | None = None

    def has(self, scope: Scope) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def approver_names(self) -> list[str]:
        """The approver entries that name this principal: itself and ``group:NAME`` for each group.

        A reserved name (``group:...``, ``system:...``) is never offered as the principal's own: a
        credential refused at its entrance cannot pose as a group or as hitl here either.
        """
        own = [] if reserved_prefix(self.name) is not None else [self.name]
        return [*own, *(f"group:{g}" for g in sorted(self.groups))]
