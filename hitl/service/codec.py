"""``/codec/encode`` and ``/codec/decode``: the Temporal UI's remote codec server, for encrypted runs.

The UI (and ``temporal --codec-endpoint``) posts ``{"payloads": [{"metadata": {k: base64}, "data":
base64}]}`` and gets the same shape back, decrypted (or encrypted) with this process's key ring
(``hitl.security.codec``). Decryption is a disclosure, so it is never open: the caller is authenticated like
every other route (an API token or an OIDC token, which the UI forwards as ``Authorization``) and
must hold the ``payloads:decode`` scope (or ``admin``); every call is logged with its principal and
namespace. Browsers may call it from one origin only, ``HITL_CODEC_CORS_ORIGIN`` (the UI's), and only
on ``/codec/...`` (:class:`CodecCors`).
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payloads

from hitl.errors import InvalidInputError, NotConfiguredError
from hitl.identity import Principal
from hitl.security import codec
from hitl.service.auth import require
from hitl.service.errors import AUTHENTICATED, problems

__all__ = ["router", "CodecCors", "PREFIX"]

PREFIX = "/codec"
router = APIRouter(prefix=PREFIX, tags=["codec"], responses={**AUTHENTICATED, **problems(503)})
log = logging.getLogger("hitl.service")

_BODY_DOC: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["payloads"],
        "properties": {"payloads": {"type": "array", "items": {"type": "object"}}}}}}},
}


async def _payloads(request: Request) -> Payloads:
    try:
        body = await request.body()
        parsed = json.loads(body)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("payloads"), list) \
                or not all(isinstance(p, dict) for p in parsed["payloads"]):
            raise ValueError("not an object with a list of payloads")
        return json_format.Parse(body, Payloads(), ignore_unknown_fields=True)
    except Exception:  # json_format's ParseError, and what a body of another shape makes it raise
        raise InvalidInputError('the body is not {"payloads": [{"metadata": {...}, "data": "<base64>"}]}') from None


def _codec() -> codec.EncryptionCodec:
    ring = codec.key_ring()
    if ring is None:
        raise NotConfiguredError("payload encryption is off here: set HITL_ENCRYPTION_KEYS (the workers' keys) for hitl serve")
    return codec.EncryptionCodec(ring)


def _answer(payloads: list[Any]) -> JSONResponse:
    return JSONResponse(json_format.MessageToDict(Payloads(payloads=payloads)) or {"payloads": []})


@router.post("/decode", openapi_extra=_BODY_DOC, summary="Decrypt payloads (the Temporal UI's codec server)")
async def decode(
    request: Request, principal: Annotated[Principal, Depends(require("payloads:decode"))],
) -> JSONResponse:
    """The payloads, decrypted; payloads that are not encrypted come back as they are.

    422 when a payload's key is not in the ring (the message names its key id) or it does not authenticate.
    """
    payloads = await _payloads(request)
    decoded = _codec().decode_strict(payloads.payloads)  # 422 for one it cannot decrypt, not the worker's marker
    log.info("codec: %s decoded %d payload(s) of namespace %s", principal.name, len(decoded),
             request.headers.get("x-namespace", "?")[:200])
    return _answer(decoded)


@router.post("/encode", openapi_extra=_BODY_DOC, summary="Encrypt payloads (the Temporal UI's codec server)")
async def encode(
    request: Request, principal: Annotated[Principal, Depends(require("payloads:decode"))],
) -> JSONResponse:
    """The payloads, encrypted with the current key (the UI encodes what it sends: signals, starts)."""
    payloads = await _payloads(request)
    return _answer(await _codec().encode(payloads.payloads))


class CodecCors:
    """CORS for the UI's origin on ``/codec/...`` only: other routes answer no browser of another origin."""

    def __init__(self, app: ASGIApp, origin: str) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=[origin.rstrip("/")], allow_methods=["POST"],
                                   allow_headers=["Authorization", "Content-Type", "X-Namespace"],
                                   allow_credentials=True, max_age=600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        target = self.cors if path == PREFIX or path.startswith(PREFIX + "/") else self.app
        await target(scope, receive, send)
