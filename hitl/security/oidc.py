"""OIDC bearer tokens: JWTs checked against a JWKS (a file or an https URL), an issuer and an audience.

The subject (``sub``, or the claim named by ``subject_claim``) is the identity; groups come from
``groups_claim`` and scopes from ``scope`` (space-separated) or ``scp`` (a list). A subject with a
reserved name (``group:...``, ``system:...``, ``policy:...``) proves nothing.

A URL's key set is fetched on the event loop without blocking it (``httpx.AsyncClient``, a few
seconds at most), kept for five minutes and then refreshed in the background while the cached
keys go on serving. A token whose key id the set lacks may cause a fetch, but an unauthenticated
caller chooses that id: at most one fetch starts per cooldown (30 s), every request waiting on
one shares it, and a fetch that fails leaves the cached keys as they were.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from pydantic import BaseModel, Field, field_validator

from hitl.errors import ConfigurationError, NotAuthenticatedError
from hitl.identity import SCOPES, Principal, reserved_prefix

__all__ = ["OidcSettings", "OidcVerifier", "check_jwks_source"]

log = logging.getLogger("hitl.security.oidc")

_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
KEYS_LIFESPAN_SECONDS = 300.0
"""How long a fetched key set is used before it is refreshed (in the background)."""
MAX_JWKS_BYTES = 1024 * 1024


def check_jwks_source(source: str) -> str:
    """``source`` if keys may be read from it: an ``https://`` URL, or a file path.

    Plain ``http://`` is refused (whoever is on the path could hand the service keys of their own),
    except to this machine (``127.0.0.1``, ``::1``, ``localhost``), where a key server can only be
    one the machine's owner runs.

    Raises:
        ConfigurationError: another scheme, or ``http://`` to another host (the message names
            ``HITL_OIDC_JWKS``).
    """
    if not _URL.match(source):
        return source
    parts = urlsplit(source)
    scheme = parts.scheme.lower()
    if scheme == "https" and parts.hostname:
        return source
    if scheme == "http" and parts.hostname in _LOOPBACK:
        return source
    raise ConfigurationError(f"HITL_OIDC_JWKS {source[:200]!r}: a key set URL must be https:// (plain http:// "
                             "only to this machine: 127.0.0.1, ::1 or localhost), or give a file path")


class OidcSettings(BaseModel, frozen=True):
    """Where the keys are and what a token must say.

    Environment (``OidcSettings.from_env``): ``HITL_OIDC_JWKS`` (a file path or an https URL),
    ``HITL_OIDC_ISSUER``, ``HITL_OIDC_AUDIENCE``, ``HITL_OIDC_GROUPS_CLAIM`` (``groups``),
    ``HITL_OIDC_SUBJECT_CLAIM`` (``sub``).

    Raises:
        ConfigurationError: ``jwks`` is a URL that is not https (``check_jwks_source``).
    """

    jwks: str = Field(min_length=1)
    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    groups_claim: str = "groups"
    subject_claim: str = "sub"
    leeway_seconds: float = Field(default=30, ge=0, le=300)
    fetch_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    """The most one fetch of a URL's key set may take, all of it (connecting, waiting, reading)."""
    refetch_cooldown_seconds: float = Field(default=30.0, ge=1, le=3600)
    """At most one fetch of a URL's key set starts within this long, whatever key ids tokens name."""

    @field_validator("jwks")
    @classmethod
    def _https_or_file(cls, value: str) -> str:
        return check_jwks_source(value)

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


def _key_set(data: Any) -> dict[str, jwt.PyJWK]:
    return {k.key_id or "": k for k in jwt.PyJWKSet.from_dict(data).keys}


def _find(keys: dict[str, jwt.PyJWK], kid: str) -> jwt.PyJWK | None:
    """The key named ``kid``; a token without one may use a set's only key."""
    return keys.get(kid) or (next(iter(keys.values())) if len(keys) == 1 and not kid else None)


class _Refused(Exception):
    """The key server answered, but not with a key set."""


class _RemoteKeys:
    """A URL's key set: fetched off the blocking path, at most once per cooldown, shared by every waiter."""

    def __init__(self, url: str, *, timeout: float, cooldown: float) -> None:
        self.url, self.timeout, self.cooldown = url, timeout, cooldown
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at: float | None = None  # time.monotonic() of the last fetch that worked
        self._started_at: float | None = None  # ... of the last fetch started
        self._failure: str | None = None  # why the last fetch failed, until one works
        self._fetch: asyncio.Task[None] | None = None

    async def key(self, kid: str) -> jwt.PyJWK:
        key = _find(self._keys, kid)
        if key is not None:
            if self._loaded_at is None or time.monotonic() - self._loaded_at >= KEYS_LIFESPAN_SECONDS:
                self._start()  # refreshed in the background; the cached key serves meanwhile
            return key
        fetch = self._start()
        if fetch is not None:
            await asyncio.shield(fetch)  # a request that goes away does not cancel the fetch others wait on
        key = _find(self._keys, kid)
        if key is None:
            why = f"; the last fetch of the key set failed: {self._failure}" if self._failure else ""
            raise NotAuthenticatedError(f"no key {kid[:60]!r} in the OIDC key set{why} (it is fetched again at most "
                                        f"every {self.cooldown:g} s)")
        return key

    def _start(self) -> asyncio.Task[None] | None:
        """The fetch under way, or a new one if the cooldown allows; None within the cooldown."""
        loop = asyncio.get_running_loop()
        if self._fetch is not None and not self._fetch.done() and self._fetch.get_loop() is loop:
            return self._fetch
        now = time.monotonic()
        if self._started_at is not None and now - self._started_at < self.cooldown:
            return None
        self._started_at = now
        self._fetch = loop.create_task(self._refresh(), name="hitl-oidc-jwks-fetch")
        return self._fetch

    async def _refresh(self) -> None:
        """Fetch the key set; on failure keep the keys there were and remember why (never raises)."""
        try:
            async with asyncio.timeout(self.timeout):
                body = await self._download()
            keys = _key_set(json.loads(body))
        except TimeoutError:
            self._failed(f"no answer within {self.timeout:g} s")
        except _Refused as exc:
            self._failed(str(exc))
        except (ValueError, jwt.PyJWTError) as exc:
            self._failed(f"not a JWKS ({exc})")
        except Exception as exc:  # noqa: BLE001 - a connection refused, a TLS failure: waiters hear why, never a 500
            self._failed(f"{type(exc).__name__}: {exc}")
        else:
            self._keys, self._loaded_at, self._failure = keys, time.monotonic(), None

    async def _download(self) -> bytes:
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client, \
                client.stream("GET", self.url, headers={"Accept": "application/json"}) as response:
            if response.status_code != 200:
                moved = " (a redirect: give the URL it points to)" if response.is_redirect else ""
                raise _Refused(f"HTTP {response.status_code}{moved}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise _Refused(f"over {MAX_JWKS_BYTES} bytes")
            return bytes(body)

    def _failed(self, why: str) -> None:
        self._failure = why
        log.warning("OIDC key set %s not fetched: %s (%s)", self.url, why,
                    "the cached keys go on serving" if self._keys else "no keys yet")


class OidcVerifier:
    """Checks bearer JWTs against a key set: a file read at start, or a URL fetched as the module says.

    Raises:
        ConfigurationError: a key set file that cannot be read or is not a JWKS.
    """

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._remote: _RemoteKeys | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        if _URL.match(settings.jwks):
            self._remote = _RemoteKeys(check_jwks_source(settings.jwks), timeout=settings.fetch_timeout_seconds,
                                       cooldown=settings.refetch_cooldown_seconds)
        else:
            try:
                self._keys = _key_set(json.loads(Path(settings.jwks).read_text()))
            except (OSError, ValueError, jwt.PyJWTError) as exc:
                raise ConfigurationError(f"HITL_OIDC_JWKS {settings.jwks}: not a readable JWKS file ({exc})") from None

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        return token.count(".") == 2 and token.startswith("eyJ")

    async def _key(self, token: str) -> Any:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise NotAuthenticatedError("bearer token is not a well-formed JWT") from None
        kid = header.get("kid") or ""
        if not isinstance(kid, str):
            raise NotAuthenticatedError("bearer token's kid is not a string")
        if self._remote is not None:
            return (await self._remote.key(kid)).key
        key = _find(self._keys, kid)
        if key is None:
            raise NotAuthenticatedError(f"no key {kid[:60]!r} in the OIDC key set")
        return key.key

    async def verify(self, token: str) -> Principal:
        """The principal a JWT proves; a URL's keys are fetched, if need be, without blocking the event loop.

        Raises:
            NotAuthenticatedError: bad signature, unknown key (or a key set that could not be
                fetched), wrong issuer or audience, expired, no subject, or a reserved subject.
        """
        s = self.settings
        key = await self._key(token)
        try:
            claims = jwt.decode(token, key, algorithms=_ALGORITHMS, audience=s.audience, issuer=s.issuer,
                                leeway=s.leeway_seconds, options={"require": ["exp", "iss", "aud"]})
        except jwt.PyJWTError as exc:
            raise NotAuthenticatedError(f"OIDC token refused: {exc}") from None
        subject = claims.get(s.subject_claim)
        if not isinstance(subject, str) or not subject or len(subject) > 256:
            raise NotAuthenticatedError(f"OIDC token has no usable {s.subject_claim!r} claim")
        if (prefix := reserved_prefix(subject)) is not None:
            raise NotAuthenticatedError(f"OIDC token's {s.subject_claim!r} claim {subject[:60]!r} starts with {prefix!r}, "
                                        "a reserved name no credential may prove (hitl.identity.RESERVED_PREFIXES)")
        groups = claims.get(s.groups_claim) or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise NotAuthenticatedError(f"OIDC token's {s.groups_claim!r} claim is not a list of names")
        raw = claims.get("scope")
        scopes = raw.split() if isinstance(raw, str) else claims.get("scp") or []
        if not isinstance(scopes, list):
            raise NotAuthenticatedError("OIDC token's scp claim is not a list")
        return Principal(name=subject, scopes=frozenset(str(x) for x in scopes if x in SCOPES),
                         groups=frozenset(groups), via="oidc", credential_id=claims.get("jti"))
