"""Signed decisions: who decided is proved by a signature the run checks, not a name it is told.

The decision service signs each decision it forwards (a compact JWS, EdDSA with Ed25519) over the
run, the requirement, the decision, the digest of the arguments it was asked about, the decider,
the decider's groups, the time and a nonce. A worker that trusts one or more public keys
(:func:`trust`, or ``HITL_DECISION_KEYS`` naming a JWKS file) is **strict**: its runs accept only
decisions and approval changes signed by one of them, so a raw Temporal signal or update that
claims to be "alice" is refused, and recorded as ``refused``. Keys rotate by key id: trust the new
key beside the old, sign with the new, then retire the old.

    signer = Signer.generate()                       # or Signer.from_pem(path)
    Path("keys.jwks").write_text(json.dumps(public_jwks([signer])))   # for the workers
    Agent(..., signer=signer)                        # a trusted internal caller signs its own

Verification is pure (no clock, no I/O), so workflow code runs it; the time it is checked against
is the run's (``workflow.now()``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel

from hitl.errors import ConfigurationError

__all__ = ["Signer", "SignedClaims", "public_jwks", "load_jwks", "trust", "trusted", "verify", "claims_of",
           "content_digest", "MAX_AGE_SECONDS"]

M = TypeVar("M", bound=BaseModel)
MAX_AGE_SECONDS = 900.0
"""A signature older than this (by the run's clock) is refused: a captured one cannot be sent much later."""
MAX_SKEW_SECONDS = 120.0
_ALGORITHM = "EdDSA"
_jws = jwt.PyJWS()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def content_digest(message: BaseModel) -> str:
    """sha256 of a decision's (or change's) content: everything but its signature and requirement id
    (a team forwards a member's decision under the member's own id)."""
    data = message.model_dump(mode="json", exclude={"signature", "requirement_id"})
    return hashlib.sha256(_canonical(data)).hexdigest()


class SignedClaims(BaseModel):
    """What a signature says."""

    run_id: str
    requirement_id: str
    action: str
    sub: str
    """The decider (or whoever changed the approval)."""
    groups: list[str] = []
    """The decider's groups, as its credential proved them (for ``group:`` approvers)."""
    content: str
    """``content_digest`` of the decision or change."""
    arguments: str
    """sha256 of the canonical arguments the requirement asked about (its audit record's ``arguments_digest``)."""
    iat: float
    nonce: str


def _kid(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "hitl-" + hashlib.sha256(raw).hexdigest()[:16]


class Signer:
    """An Ed25519 private key and its key id; signs decisions for the runs that trust its public key."""

    def __init__(self, key: Ed25519PrivateKey, kid: str | None = None) -> None:
        self._key = key
        self.kid = kid or _kid(key.public_key())

    def __repr__(self) -> str:
        return f"Signer(kid={self.kid!r})"  # never the key

    @classmethod
    def generate(cls, kid: str | None = None) -> Signer:
        return cls(Ed25519PrivateKey.generate(), kid)

    @classmethod
    def from_pem(cls, path: str | Path, kid: str | None = None) -> Signer:
        """Load a PEM (PKCS#8) Ed25519 private key, as ``hitl keys generate`` writes it.

        Raises:
            ConfigurationError: unreadable, or not an Ed25519 private key.
        """
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigurationError(f"signing key {path}: cannot be read as a PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigurationError(f"signing key {path}: not an Ed25519 key")
        return cls(key, kid)

    def pem(self) -> bytes:
        return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def sign(self, *, run_id: str, requirement_id: str, message: BaseModel, decider: str, arguments_digest: str,
             groups: Iterable[str] = (), at: float) -> str:
        """A compact JWS over the claims of ``message`` (a decision or an approval change) on that requirement."""
        claims = SignedClaims(run_id=run_id, requirement_id=requirement_id, action=str(getattr(message, "action", "change")),
                              sub=decider, groups=sorted(set(groups)), content=content_digest(message),
                              arguments=arguments_digest, iat=at, nonce=uuid.uuid4().hex)
        return _jws.encode(_canonical(claims.model_dump()), self._key, algorithm=_ALGORITHM, headers={"kid": self.kid})

    def signed(self, message: M, *, run_id: str, requirement_id: str, arguments_digest: str, groups: Iterable[str] = ()) -> M:
        """A copy of ``message`` (a decision or change) carrying its signature, made now, as its decider."""
        decider = getattr(message, "resolved_by", None) or getattr(message, "changed_by", None) or ""
        signature = self.sign(run_id=run_id, requirement_id=requirement_id, message=message, decider=decider,
                              arguments_digest=arguments_digest, groups=groups, at=time.time())
        return message.model_copy(update={"signature": signature})


def public_jwks(keys: Iterable[Signer | Ed25519PublicKey]) -> dict[str, Any]:
    """A JWKS of the public halves (what workers trust), each under its key id."""
    found = []
    for k in keys:
        public, kid = (k.public_key, k.kid) if isinstance(k, Signer) else (k, _kid(k))
        jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(public))
        found.append({**jwk, "kid": kid, "alg": _ALGORITHM, "use": "sig"})
    return {"keys": found}


def load_jwks(source: str | Path | Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """Key id -> public key, from a JWKS (a dict, or a file path).

    Raises:
        ConfigurationError: unreadable, or holding a key that is not Ed25519 or has no ``kid``.
    """
    try:
        data = source if isinstance(source, Mapping) else json.loads(Path(source).read_text())
        keys = {}
        for jwk in data["keys"]:
            key = jwt.algorithms.OKPAlgorithm.from_jwk(jwk)
            if not isinstance(key, Ed25519PublicKey) or not jwk.get("kid"):
                raise ValueError(f"key {jwk.get('kid')!r} is not an Ed25519 public key with a kid")
            keys[jwk["kid"]] = key
    except (OSError, ValueError, KeyError, TypeError, jwt.PyJWTError) as exc:
        raise ConfigurationError(f"decision keys {source if not isinstance(source, Mapping) else '(dict)'}: "
                                 f"not a JWKS of Ed25519 keys ({exc})") from None
    return keys


_trusted: dict[str, Ed25519PublicKey] = {}


def trust(keys: Mapping[str, Ed25519PublicKey] | Iterable[Signer | Ed25519PublicKey] | None) -> None:
    """Make this worker process strict, trusting these public keys (by key id); None makes it open again.

    Like ``set_group_resolver``, set it the same way in every worker: workflow code reads it when a
    decision arrives (each verdict is recorded, so replays never depend on it).
    """
    global _trusted
    if keys is None:
        _trusted = {}
    elif isinstance(keys, Mapping):
        _trusted = dict(keys)
    else:
        _trusted = load_jwks(public_jwks(keys))


def trusted() -> dict[str, Ed25519PublicKey]:
    """The keys this process trusts; empty when it is open (the default)."""
    return _trusted


def claims_of(token: str) -> SignedClaims | None:
    """The claims a signature carries, unverified (for a trail already checked, or a replay)."""
    try:
        payload = token.split(".")[1]
        return SignedClaims.model_validate_json(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None


def verify(token: str, keys: Mapping[str, Ed25519PublicKey]) -> SignedClaims:
    """The claims of a signature made by one of ``keys``.

    Raises:
        ValueError: malformed, an unknown key id, or a bad signature (the message says which).
    """
    try:
        header = _jws.get_unverified_header(token)
    except jwt.PyJWTError:
        raise ValueError("the signature is not a compact JWS") from None
    kid = header.get("kid")
    if header.get("alg") != _ALGORITHM or not isinstance(kid, str):
        raise ValueError("the signature is not EdDSA with a key id")
    key = keys.get(kid)
    if key is None:
        raise ValueError(f"signed by key {kid[:40]!r}, which this worker does not trust")
    try:
        payload = _jws.decode_complete(token, key, algorithms=[_ALGORITHM])["payload"]
        return SignedClaims.model_validate_json(payload)
    except (jwt.PyJWTError, ValueError) as exc:
        raise ValueError(f"the signature does not verify with key {kid!r} ({type(exc).__name__})") from None
