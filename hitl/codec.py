"""Encrypted payloads: what hitl writes to Temporal's history is AES-256-GCM ciphertext.

Every payload (a run's input, tool arguments and results, model messages, decisions, memos) and every
failure's message and stack trace (encoded failure attributes) is encrypted by the data converter
of every client hitl makes, so workers, the service, ``Agent`` and the CLI read and write the same.

Keys come from ``HITL_ENCRYPTION_KEYS`` (``kid2:BASE64KEY,kid1:BASE64KEY``) or from the file named
by ``HITL_ENCRYPTION_KEYS_FILE`` (the same, one per line or comma-separated): 32-byte keys, base64.
The first key encrypts; every listed key decrypts, so keys rotate: put the new key first and keep
the old ones listed while runs written under them may still be read. Make a key with
``python -c "import os, base64; print(base64.b64encode(os.urandom(32)).decode())"``.

Without keys the data converter is exactly ``pydantic_data_converter``: plain JSON. A payload that
is not encrypted is read as it is, so encryption can be turned on while runs are in flight.
Search attributes are not payloads: they stay in clear (see ``hitl.visibility``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from hitl.errors import ConfigurationError

__all__ = ["KeyRing", "EncryptionCodec", "ENCODING", "KEY_ID_METADATA", "configure", "key_ring", "data_converter"]

ENCODING = b"binary/encrypted"
"""The ``encoding`` metadata of an encrypted payload."""
KEY_ID_METADATA = "encryption-key-id"
"""The metadata entry naming the key a payload was encrypted with."""
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class KeyRing:
    """Named AES-256 keys, the first of which encrypts. Its repr names the key ids, never the keys."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        """
        Raises:
            ConfigurationError: no key, a key id that is not ``[A-Za-z0-9._-]{1,64}``, a repeated
                id, a key that is not 32 bytes.
        """
        if not keys:
            raise ConfigurationError("an encryption key ring needs at least one key")
        seen: dict[str, AESGCM] = {}
        for kid, key in keys:
            if not _KEY_ID.match(kid):
                raise ConfigurationError(f"encryption key id {kid[:70]!r}: use 1 to 64 of A-Z a-z 0-9 . _ -")
            if kid in seen:
                raise ConfigurationError(f"encryption key id {kid!r} is listed twice")
            if len(key) != 32:
                raise ConfigurationError(f"encryption key {kid!r} is {len(key)} bytes: AES-256 needs 32")
            seen[kid] = AESGCM(key)
        self._ciphers = seen
        self.current = keys[0][0]
        """The id of the key that encrypts."""
        self.fingerprint = hashlib.sha256(b"".join(k.encode() + b":" + v + b"\0" for k, v in keys)).hexdigest()[:32]
        """A digest of the ring (not of any single key), telling one ring from another."""

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._ciphers)

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={list(self._ciphers)!r}, current={self.current!r})"

    @classmethod
    def parse(cls, text: str, source: str = "HITL_ENCRYPTION_KEYS") -> KeyRing:
        """A ring from ``kid:BASE64,kid:BASE64`` (commas or newlines between); errors name ``source``, never a key."""
        keys: list[tuple[str, bytes]] = []
        for position, item in enumerate(filter(None, (p.strip() for p in re.split(r"[,\n]", text))), start=1):
            kid, sep, encoded = item.partition(":")
            if not sep or not kid.strip():
                raise ConfigurationError(f"{source}: item {position} is not KEY_ID:BASE64_KEY")
            try:
                key = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise ConfigurationError(f"{source}: the key of {kid.strip()[:70]!r} is not base64") from None
            keys.append((kid.strip(), key))
        if not keys:
            raise ConfigurationError(f"{source} lists no key")
        try:
            return cls(keys)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{source}: {exc}") from None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> KeyRing | None:
        """The ring of ``HITL_ENCRYPTION_KEYS`` or ``HITL_ENCRYPTION_KEYS_FILE``; None when neither is set."""
        env = dict(os.environ if env is None else env)
        if env.get("HITL_ENCRYPTION_KEYS", "").strip():
            return cls.parse(env["HITL_ENCRYPTION_KEYS"])
        if path := env.get("HITL_ENCRYPTION_KEYS_FILE", "").strip():
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise ConfigurationError(f"HITL_ENCRYPTION_KEYS_FILE {path}: {exc.strerror}") from None
            return cls.parse(text, f"HITL_ENCRYPTION_KEYS_FILE {path}")
        return None

    def encrypt(self, plain: bytes) -> Payload:
        """``plain`` as an encrypted payload under the current key (a fresh random nonce each time)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self.current].encrypt(nonce, plain, self.current.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: self.current.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> bytes:
        """The plaintext of an encrypted payload.

        Raises:
            ConfigurationError: its key is not in the ring (the message names the key id), or it
                does not authenticate (tampered with, or a different key under the same id).
        """
        kid = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise ConfigurationError(f"a payload is encrypted with key id {kid[:70]!r}, which is not in the key ring "
                                     f"({', '.join(self._ciphers)}): add it to HITL_ENCRYPTION_KEYS")
        data = payload.data
        try:
            return cipher.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], kid.encode())
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce
            raise ConfigurationError(f"a payload encrypted with key id {kid!r} does not authenticate: altered, "
                                     "or encrypted with another key of that id") from None


class EncryptionCodec(PayloadCodec):
    """A Temporal payload codec: each payload, serialized whole (metadata and data), sealed with AES-GCM."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.ring.encrypt(p.SerializeToString()) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(self.decode_all(payloads))

    def decode_all(self, payloads: Iterable[Payload]) -> Iterable[Payload]:
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                yield payload  # written before encryption was on
                continue
            inner = Payload()
            inner.ParseFromString(self.ring.decrypt(payload))
            yield inner


class _Unset:
    pass


_UNSET = _Unset()
_ring: KeyRing | None | _Unset = _UNSET
_converters: dict[str, DataConverter] = {}


def configure(keys: KeyRing | str | None | _Unset = _UNSET) -> None:
    """Set this process's key ring from code (a ring, or ``kid:BASE64,...`` text); None turns encryption
    off; no argument reads the environment again at the next use."""
    global _ring
    _ring = KeyRing.parse(keys, "hitl.codec.configure") if isinstance(keys, str) else keys


def key_ring() -> KeyRing | None:
    """This process's key ring: what :func:`configure` set, else the environment, read once."""
    global _ring
    if isinstance(_ring, _Unset):
        _ring = KeyRing.from_env()
    return _ring


def data_converter() -> DataConverter:
    """The data converter of every client hitl makes: ``pydantic_data_converter`` without keys; with
    keys, the same plus the encryption codec and failure messages moved into encrypted attributes."""
    ring = key_ring()
    if ring is None:
        return pydantic_data_converter
    converter = _converters.get(ring.fingerprint)
    if converter is None:
        converter = dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(ring),
                                        failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
        _converters[ring.fingerprint] = converter
    return converter


def converter_key() -> str:
    """What tells this process's data converter from another's: ``plain`` or the ring's fingerprint."""
    ring = key_ring()
    return "plain" if ring is None else ring.fingerprint
