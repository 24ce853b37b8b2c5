"""Strict decoding of what other clients send a run: every signal, update and the run's input.

Handlers take ``RawValue`` and decode here, because the data converter picks a converter by the
payload's ``encoding``, not by the handler's type hint: a ``binary/plain`` payload would reach a
handler as ``bytes`` and fail every workflow task after it, wedging the run. Anything but JSON of
the expected shape, within hitl's size limit, is refused with an ``InvalidInputError`` that the
handler turns into a logged, dropped signal or a rejected update; it never fails the task.
"""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from hitl import limits
from hitl.errors import HitlError, InvalidInputError, PayloadTooLargeError

T = TypeVar("T")
_adapters: dict[Any, pydantic.TypeAdapter[Any]] = {}


def decode(raw: Any, shape: Any, what: str, max_bytes: int = limits.MAX_REQUEST_BYTES) -> Any:
    """The payload as ``shape`` (a pydantic model or any type pydantic validates), or InvalidInputError."""
    if not isinstance(raw, RawValue):  # a handler whose type hints did not say RawValue: never trust it
        if isinstance(raw, (bytes, bytearray)):
            raise InvalidInputError(f"{what}: a binary payload refused; send JSON (json/plain)")
        try:
            return _adapter(shape).validate_python(raw)
        except pydantic.ValidationError as exc:
            raise InvalidInputError(f"{what}: refused: {exc.errors()[0]['msg'] if exc.errors() else exc}") from None
    payload = raw.payload
    encoding = payload.metadata.get("encoding", b"")
    if encoding != b"json/plain":
        raise InvalidInputError(f"{what}: payload encoding {encoding.decode(errors='replace')!r} refused; send JSON (json/plain)")
    if len(payload.data) > max_bytes:
        raise PayloadTooLargeError(
            f"{what}: the payload is {limits.size(len(payload.data))}, over hitl's limit of {limits.size(max_bytes)}")
    try:
        return _adapter(shape).validate_json(payload.data)
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(payload)'}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidInputError(f"{what}: refused: {problems}") from None


def _adapter(shape: Any) -> pydantic.TypeAdapter[Any]:
    adapter = _adapters.get(shape)
    if adapter is None:
        adapter = _adapters[shape] = pydantic.TypeAdapter(shape)
    return adapter


def refusal(exc: HitlError) -> ApplicationError:
    """A refused update's failure: the client turns its type back into the HitlError."""
    return ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True)


class NotDecryptableHere(Exception):
    """This worker cannot decrypt the run's input (its key ring lacks the key it was written with).

    Not a HitlError, so it fails the workflow *task*, never the run: the task is retried, here once
    the key is added, or by a worker that has it (a continue-as-new or a child started by a worker
    with a newer key ring during a rotation must not end the run).
    """


def require_decryptable(raw: Any, what: str) -> None:
    """Raise NotDecryptableHere for the codec's marker of a payload this worker could not decrypt."""
    payload = getattr(raw, "payload", None)
    if payload is not None and payload.metadata.get("encoding", b"") == b"binary/undecryptable":
        raise NotDecryptableHere(f"{what}: {payload.data.decode(errors='replace')[:300]}")
