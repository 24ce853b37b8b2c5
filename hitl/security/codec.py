"""Encrypted payloads: what hitl writes to Temporal's history is AES-256-GCM ciphertext.

Every payload (a run's input, tool arguments and results, model messages, decisions, memos) and every
failure's message and stack trace (encoded failure attributes) is encrypted by the data converter
of every client hitl makes, so workers, the service, ``Agent`` and the CLI read and write the same.

Keys come from ``HITL_ENCRYPTION_KEYS`` (``kid2:BASE64KEY,kid1:BASE64KEY``) or from the file named
by ``HITL_ENCRYPTION_KEYS_FILE`` (the same, one per line or comma-separated): 32-byte keys, base64.
The first key encrypts; every listed key decrypts, so keys rotate in two phases: list the new key
second everywhere (decrypt-only), then, once every process has it, first; keep the old ones listed
while runs written under them may still be read. Make a key with
``python -c "import os, base64; print(base64.b64encode(os.urandom(32)).decode())"``. Errors about
the ring name an item by its position (and its id when that is a well-formed id), never a key.

A payload that cannot be decrypted (a key id not in the ring, or one that does not authenticate)
decodes to a marker payload (``binary/undecryptable``, its data a reason naming the key id), not an
exception: a workflow handler that takes ``RawValue`` refuses it like any other bad input, so one
bad signal cannot fail every workflow task of a run. Converted to a typed value (an activity's
arguments or result, a client's answer) it raises :class:`UndecryptablePayloadError`, naming the key id.

Without keys the data converter is exactly ``pydantic_data_converter``: plain JSON. A payload that
is not encrypted is read as it is, so encryption can be turned on while runs are in flight.
Search attributes are not payloads: they stay in clear (see ``hitl.observability.visibility``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
import re
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, EncodingPayloadConverter, PayloadCodec

from hitl.errors import ConfigurationError
from hitl.settings import environment, secret_setting

__all__ = ["KeyRing", "EncryptionCodec", "UndecryptablePayloadError", "ENCODING", "UNDECRYPTABLE", "KEY_ID_METADATA",
           "configure", "key_ring", "data_converter"]

ENCODING = b"binary/encrypted"
"""The ``encoding`` metadata of an encrypted payload."""
UNDECRYPTABLE = b"binary/undecryptable"
"""The ``encoding`` of what the codec decodes a payload it cannot decrypt to; its data is the reason."""
KEY_ID_METADATA = "encryption-key-id"
"""The metadata entry naming the key a payload was encrypted with."""
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_KEY_ID_RULE = "[A-Za-z0-9._-]{1,64}"


class UndecryptablePayloadError(ValueError):
    """A payload the key ring cannot decrypt, converted to a value. Not a HitlError: in a workflow it
    fails the workflow task (retried until the key is added), never the run."""


def _bad_id(kid: str) -> bool:
    """Not ``[A-Za-z0-9._-]{1,64}``, or a 32-byte key in base64 (unpadded, it fits): an item written ``KEY:ID``."""
    if not _KEY_ID.match(kid):
        return True
    try:
        return len(kid) >= 43 and len(base64.b64decode(kid + "=" * (-len(kid) % 4), validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def _item(position: int, source: str, kid: str) -> str:
    """An item of a key ring as an error names it: by position, and by id only when the id is well formed
    and short of a key's length (a 32-byte key is 43 base64 characters): ``KEY:ID`` is never echoed."""
    return f"item {position} of {source}" + (f" ({kid!r})" if _KEY_ID.match(kid) and len(kid) <= 32 else "")


class KeyRing:
    """Named AES-256 keys, the first of which encrypts. Its repr names the key ids, never the keys."""

    def __init__(self, keys: Sequence[tuple[str, bytes]], *, source: str = "the key ring") -> None:
        """
        Raises:
            ConfigurationError: no key, a key id that is not ``[A-Za-z0-9._-]{1,64}``, a repeated
                id, a key that is not 32 bytes. The message names the item by its position in
                ``source``, and by its id only when that id is well formed; never a key.
        """
        if not keys:
            raise ConfigurationError(f"{source}: an encryption key ring needs at least one key")
        seen: dict[str, AESGCM] = {}
        for position, (kid, key) in enumerate(keys, start=1):
            if _bad_id(kid):
                raise ConfigurationError(f"item {position} of {source}: the id is not {_KEY_ID_RULE} or is a key "
                                         "(items are KEY_ID:BASE64_KEY, the id first)")
            if kid in seen:
                raise ConfigurationError(f"{_item(position, source, kid)}: the id is listed twice")
            if len(key) != 32:
                raise ConfigurationError(f"{_item(position, source, kid)}: the key is {len(key)} bytes: AES-256 needs 32")
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
        """A ring from ``kid:BASE64,kid:BASE64`` (commas or newlines between); errors name ``source`` and
        the item's position, never a key (nor an id that is not well formed: it may be a key, swapped)."""
        keys: list[tuple[str, bytes]] = []
        for position, item in enumerate(filter(None, (p.strip() for p in re.split(r"[,\n]", text))), start=1):
            kid, sep, encoded = (part.strip() for part in item.partition(":"))
            if not sep or not kid:
                raise ConfigurationError(f"item {position} of {source}: not KEY_ID:BASE64_KEY")
            if _bad_id(kid):
                raise ConfigurationError(f"item {position} of {source}: the id is not {_KEY_ID_RULE} or is a key "
                                         "(items are KEY_ID:BASE64_KEY, the id first)")
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ConfigurationError(f"{_item(position, source, kid)}: the key is not base64") from None
            keys.append((kid, key))
        if not keys:
            raise ConfigurationError(f"{source} lists no key")
        return cls(keys, source=source)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> KeyRing | None:
        """The ring of ``HITL_ENCRYPTION_KEYS`` or ``HITL_ENCRYPTION_KEYS_FILE``; None when neither is set."""
        found = secret_setting(environment().named() if env is None else env, "HITL_ENCRYPTION_KEYS")
        return cls.parse(*found) if found is not None else None

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
            shown = f"key id {kid!r}" if _KEY_ID.match(kid) else "a key id that is not well formed"
            raise ConfigurationError(f"a payload is encrypted with {shown}, which is not in the key ring "
                                     f"({', '.join(self._ciphers)}): add it to HITL_ENCRYPTION_KEYS")
        data = payload.data
        try:
            return cipher.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], kid.encode())
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce
            raise ConfigurationError(f"a payload encrypted with key id {kid!r} does not authenticate: altered, "
                                     "or encrypted with another key of that id") from None


class EncryptionCodec(PayloadCodec):
    """A Temporal payload codec: each payload, serialized whole (metadata and data), sealed with AES-GCM.

    ``decode`` turns a payload it cannot decrypt into an ``UNDECRYPTABLE`` marker, so that it fails
    only where it is used; ``decode_strict`` (the codec server's) raises instead.
    """

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.ring.encrypt(p.SerializeToString()) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(self.decode_all(payloads, strict=False))

    def decode_strict(self, payloads: Iterable[Payload]) -> list[Payload]:
        """The payloads decrypted, or ConfigurationError naming the key id of one that cannot be."""
        return list(self.decode_all(payloads, strict=True))

    def decode_all(self, payloads: Iterable[Payload], strict: bool = True) -> Iterable[Payload]:
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                yield payload  # written before encryption was on
                continue
            try:
                plain = self.ring.decrypt(payload)
            except ConfigurationError as exc:
                if strict:
                    raise
                yield _marker(payload, str(exc))
                continue
            inner = Payload()
            inner.ParseFromString(plain)
            yield inner


def _marker(payload: Payload, reason: str) -> Payload:
    """What a payload that cannot be decrypted decodes to: the reason (which names the key id, never a key)."""
    metadata = {"encoding": UNDECRYPTABLE}
    kid = payload.metadata.get(KEY_ID_METADATA, b"")
    if _KEY_ID.match(kid.decode(errors="replace")):
        metadata[KEY_ID_METADATA] = kid
    return Payload(metadata=metadata, data=reason.encode())


class _UndecryptableConverter(EncodingPayloadConverter):
    """Reads an ``UNDECRYPTABLE`` marker as what it is: an error naming the key id. Writes nothing."""

    @property
    def encoding(self) -> str:
        return UNDECRYPTABLE.decode()

    def to_payload(self, value: object) -> Payload | None:
        return None

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> object:
        raise UndecryptablePayloadError(f"cannot decrypt a payload: {payload.data.decode(errors='replace')[:500]}")


class _PayloadConverter(PydanticPayloadConverter):
    """``pydantic_data_converter``'s payload converter, which also reads the codec's undecryptable marker."""

    def __init__(self) -> None:
        super().__init__()
        self._set_converters(*self.converters.values(), _UndecryptableConverter())


class _Unset:
    pass


_UNSET = _Unset()
_ring: KeyRing | None | _Unset = _UNSET
_converters: dict[str, DataConverter] = {}


def configure(keys: KeyRing | str | None | _Unset = _UNSET) -> None:
    """Set this process's key ring from code (a ring, or ``kid:BASE64,...`` text); None turns encryption
    off; no argument reads the environment again at the next use."""
    global _ring
    _ring = KeyRing.parse(keys, "hitl.security.codec.configure") if isinstance(keys, str) else keys


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
        converter = dataclasses.replace(pydantic_data_converter, payload_converter_class=_PayloadConverter,
                                        payload_codec=EncryptionCodec(ring),
                                        failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
        _converters[ring.fingerprint] = converter
    return converter


def converter_key() -> str:
    """What tells this process's data converter from another's: ``plain`` or the ring's fingerprint."""
    ring = key_ring()
    return "plain" if ring is None else ring.fingerprint
