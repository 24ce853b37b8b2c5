"""Who is calling: the principal a credential proves, and the scopes it holds.

An identity is what a credential proves (an API token's recorded principal, an OIDC token's
subject, a link's approver, a Slack user's mapped principal), never a name the caller typed.
Every decision the service forwards is made as it.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Principal", "Scope", "SCOPES"]

Scope = Literal["approvals:read", "approvals:decide", "runs:start", "runs:read", "runs:cancel",
                "payloads:decode", "metrics:read", "admin"]
SCOPES: tuple[str, ...] = get_args(Scope)
"""Every scope a token may hold. ``admin`` implies all the others. ``payloads:decode``: use the codec
server (``/codec/decode``, ``/codec/encode``), i.e. read encrypted runs' arguments in clear.
``metrics:read``: scrape ``hitl serve``'s ``/metrics``."""


class Principal(BaseModel):
    """An authenticated caller.

    Attributes:
        name: The identity: an API token's principal or an OIDC token's subject. Decisions are
            recorded as made by it (``resolved_by``).
        scopes: What it may do at all; who may decide a given approval is that approval's policy.
        groups: Its groups, from an OIDC claim (used to list what waits for it: ``approver=me``).
        via: How it was proven: ``token`` (an API token), ``oidc`` (an OIDC bearer token), ``link``
            (a one-click decision link, ``hitl.links``) or ``slack`` (a signed Slack action whose user
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
        """The approver entries that name this principal: itself and ``group:NAME`` for each group."""
        return [self.name, *(f"group:{g}" for g in sorted(self.groups))]
