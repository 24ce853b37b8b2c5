"""OIDC bearer tokens: JWTs checked against a JWKS (a file or a URL), an issuer and an audience.

The subject (``sub``, or the claim named by ``subject_claim``) is the identity; groups come from
``groups_claim`` and scopes from ``scope`` (space-separated) or ``scp`` (a list).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
from pydantic import BaseModel, Field

from hitl.errors import ConfigurationError, NotAuthenticatedError
from hitl.identity import SCOPES, Principal

__all__ = ["OidcSettings", "OidcVerifier"]

_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]


class OidcSettings(BaseModel, frozen=True):
    """Where the keys are and what a token must say.

    Environment (``OidcSettings.from_env``): ``HITL_OIDC_JWKS`` (a file path or an https URL),
    ``HITL_OIDC_ISSUER``, ``HITL_OIDC_AUDIENCE``, ``HITL_OIDC_GROUPS_CLAIM`` (``groups``),
    ``HITL_OIDC_SUBJECT_CLAIM`` (``sub``).
    """

    jwks: str = Field(min_length=1)
    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    groups_claim: str = "groups"
    subject_claim: str = "sub"
    leeway_seconds: float = Field(default=30, ge=0, le=300)

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> OidcSettings | None:
        jwks = environ.get("HITL_OIDC_JWKS")
        if not jwks:
            return None
        missing = [k for k in ("HITL_OIDC_ISSUER", "HITL_OIDC_AUDIENCE") if not environ.get(k)]
        if missing:
            raise ConfigurationError(f"HITL_OIDC_JWKS is set: set {' and '.join(missing)} too")
        return cls(jwks=jwks, issuer=environ["HITL_OIDC_ISSUER"], audience=environ["HITL_OIDC_AUDIENCE"],
                   groups_claim=environ.get("HITL_OIDC_GROUPS_CLAIM") or "groups",
                   subject_claim=environ.get("HITL_OIDC_SUBJECT_CLAIM") or "sub")


class OidcVerifier:
    """Checks bearer JWTs; a URL's key set is fetched (and cached, refreshed on an unknown key id) by PyJWT."""

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._client: jwt.PyJWKClient | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        if settings.jwks.startswith(("https://", "http://")):
            self._client = jwt.PyJWKClient(settings.jwks, cache_keys=True, lifespan=300)
        else:
            try:
                data = json.loads(Path(settings.jwks).read_text())
                key_set = jwt.PyJWKSet.from_dict(data)
            except (OSError, ValueError, jwt.PyJWTError) as exc:
                raise ConfigurationError(f"HITL_OIDC_JWKS {settings.jwks}: not a readable JWKS file ({exc})") from None
            self._keys = {k.key_id or "": k for k in key_set.keys}

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        return token.count(".") == 2 and token.startswith("eyJ")

    def _key(self, token: str) -> Any:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise NotAuthenticatedError("bearer token is not a well-formed JWT") from None
        kid = header.get("kid") or ""
        if self._client is not None:
            try:
                return self._client.get_signing_key(kid).key
            except jwt.PyJWKClientError as exc:
                raise NotAuthenticatedError(f"no key {kid!r} in the OIDC key set ({exc})") from None
        key = self._keys.get(kid) or (next(iter(self._keys.values())) if len(self._keys) == 1 and not kid else None)
        if key is None:
            raise NotAuthenticatedError(f"no key {kid!r} in the OIDC key set")
        return key.key

    def verify(self, token: str) -> Principal:
        """The principal a JWT proves.

        Raises:
            NotAuthenticatedError: bad signature, unknown key, wrong issuer or audience, expired,
                or no subject.
        """
        s = self.settings
        try:
            claims = jwt.decode(token, self._key(token), algorithms=_ALGORITHMS, audience=s.audience, issuer=s.issuer,
                                leeway=s.leeway_seconds, options={"require": ["exp", "iss", "aud"]})
        except jwt.PyJWTError as exc:
            raise NotAuthenticatedError(f"OIDC token refused: {exc}") from None
        subject = claims.get(s.subject_claim)
        if not isinstance(subject, str) or not subject or len(subject) > 256:
            raise NotAuthenticatedError(f"OIDC token has no usable {s.subject_claim!r} claim")
        groups = claims.get(s.groups_claim) or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise NotAuthenticatedError(f"OIDC token's {s.groups_claim!r} claim is not a list of names")
        raw = claims.get("scope")
        scopes = raw.split() if isinstance(raw, str) else claims.get("scp") or []
        if not isinstance(scopes, list):
            raise NotAuthenticatedError("OIDC token's scp claim is not a list")
        return Principal(name=subject, scopes=frozenset(str(x) for x in scopes if x in SCOPES),
                         groups=frozenset(groups), via="oidc", credential_id=claims.get("jti"))
