"""API tokens for services that decide: created and revoked by an operator, shown once, stored as a hash.

A token reads ``hitl_<id>_<secret>``: the recognisable prefix lets secret scanners find a leaked
one, the id names it in listings and logs, and only sha256(secret) is kept in PostgreSQL.

    store = TokenStore(PostgresDb())
    token, secret = store.create("payments-backoffice", ["approvals:read", "approvals:decide"],
                                 expires_in=timedelta(days=90))
    store.revoke(token.id)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from hitl.errors import InvalidInputError, NotAuthenticatedError, RequirementNotFoundError
from hitl.identity import SCOPES, Principal, check_principal_name, reserved_prefix
from hitl.store import tokens as _rows
from hitl.store.database import Database

__all__ = ["TokenStore", "TokenInfo", "PREFIX"]

PREFIX = "hitl_"
_ID_CHARS = 12


class TokenInfo(BaseModel):
    """What is known of a token without its secret."""

    id: str
    principal: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    created_by: str | None = None

    @property
    def active(self) -> bool:
        now = datetime.now(UTC)
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _parse(token: str) -> tuple[str, str]:
    """(id, secret) of a well-formed token; a malformed one proves nothing."""
    if not token.startswith(PREFIX) or len(token) > 200:
        raise NotAuthenticatedError("not a hitl API token")
    token_id, _, secret = token[len(PREFIX):].partition("_")
    if len(token_id) != _ID_CHARS or not token_id.isalnum() or len(secret) < 20:
        raise NotAuthenticatedError("not a hitl API token")
    return token_id, secret


class TokenStore:
    """The API tokens of one hitl database (a table beside its approvals: ``<approvals_table>_tokens``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self, principal: str, scopes: Iterable[str], *, expires_in: timedelta | None = None, created_by: str | None = None,
    ) -> tuple[TokenInfo, str]:
        """Make a token for ``principal``; returns it and its full text, which is shown this once.

        Raises:
            InvalidInputError: an empty or over-long principal, a reserved one (``group:...``,
                ``system:...``, ``policy:...``: ``hitl.identity.RESERVED_PREFIXES``), an unknown
                scope, no scope at all, or an expiry that is not in the future.
        """
        scopes = sorted(set(scopes))
        if not principal or len(principal) > 256 or principal != principal.strip():
            raise InvalidInputError(f"token principal {principal[:60]!r}: 1 to 256 characters, no surrounding spaces")
        check_principal_name(principal, "token principal")
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            raise InvalidInputError(f"token scopes {unknown or scopes}: give one or more of {', '.join(SCOPES)}")
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidInputError(f"token expiry {expires_in}: must be in the future")
        token_id = secrets.token_hex(_ID_CHARS // 2)
        secret = secrets.token_urlsafe(32)
        expires_at = datetime.now(UTC) + expires_in if expires_in is not None else None
        row = _rows.insert(self.db, token_id=token_id, secret_hash=_hash(secret), principal=principal, scopes=scopes,
                           expires_at=expires_at, created_by=created_by)
        return _info(row), f"{PREFIX}{token_id}_{secret}"

    def list(self, *, include_inactive: bool = False) -> list[TokenInfo]:
        """Every token, newest first; revoked and expired ones only with ``include_inactive``."""
        tokens = [_info(r) for r in _rows.rows(self.db)]
        return tokens if include_inactive else [t for t in tokens if t.active]

    def revoke(self, token_id: str) -> TokenInfo:
        """Revoke a token by id (or by its full text); it is refused from the next request on.

        Raises:
            RequirementNotFoundError: no such token.
        """
        if token_id.startswith(PREFIX):
            token_id = token_id[len(PREFIX):].partition("_")[0]
        row = _rows.revoke(self.db, token_id)
        if row is None:
            raise RequirementNotFoundError(f"no API token {token_id!r}")
        return _info(row)

    async def authenticate(self, token: str) -> Principal:
        """The principal a token proves.

        Raises:
            NotAuthenticatedError: malformed, unknown, wrong secret, revoked, expired, or made
                for a reserved name (the message says which, never echoing the secret).
        """
        token_id, secret = _parse(token)
        row = await _rows.find(self.db, token_id)
        if row is None or not hmac.compare_digest(row["secret_hash"], _hash(secret)):
            raise NotAuthenticatedError(f"API token {token_id} is not valid")
        info = _info(row)
        if info.revoked_at is not None:
            raise NotAuthenticatedError(f"API token {token_id} was revoked")
        if info.expires_at is not None and info.expires_at <= datetime.now(UTC):
            raise NotAuthenticatedError(f"API token {token_id} expired at {info.expires_at.isoformat()}")
        if reserved_prefix(info.principal) is not None:  # made before such names were refused
            raise NotAuthenticatedError(f"API token {token_id} is for {info.principal[:60]!r}, a reserved name no "
                                        "credential may prove: revoke it and make one for the principal's own name")
        return Principal(name=info.principal, scopes=frozenset(info.scopes), via="token", credential_id=token_id)


def _info(row: dict[str, object]) -> TokenInfo:
    return TokenInfo.model_validate({k: v for k, v in row.items() if k != "secret_hash"})
