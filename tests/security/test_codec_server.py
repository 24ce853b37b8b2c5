"""The codec server's promises the other encryption tests leave out: every decode logged with its caller, and
``POST /codec/encode`` (README, "Encrypted payloads")."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload

from hitl.security import codec
from tests.security.test_encryption import NEW, OLD, SECRET, codec_service, decode_body, keys  # noqa: F401 - fixtures
from tests.security.test_links import _Lines


def clear(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


def metadata(payload: dict[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in payload["metadata"].items()}


async def test_every_decode_is_logged_with_its_caller_and_namespace(codec_service):  # noqa: F811
    """One line per decode, naming the principal, how many payloads and the namespace, never a payload or the
    token; calls refused (401, 403) decode nothing and log no decode."""
    sealed = await codec.EncryptionCodec(codec.key_ring()).encode([clear(SECRET), clear("second")])
    log = logging.getLogger("hitl.service")
    handler, level = _Lines(), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    viewer = codec_service.token("ui-viewer", "payloads:decode")
    try:
        async with codec_service.client() as anonymous:
            assert (await anonymous.post("/codec/decode", json=decode_body(*sealed))).status_code == 401
        async with codec_service.client(codec_service.token("approver", "approvals:read")) as approver:
            assert (await approver.post("/codec/decode", json=decode_body(*sealed))).status_code == 403
        assert not [line for line in handler.lines if line.startswith("codec:")]  # the control below logs
        async with codec_service.client(viewer) as http:
            answer = await http.post("/codec/decode", json=decode_body(*sealed), headers={"X-Namespace": "default"})
            assert answer.status_code == 200, answer.text
            alone = await http.post("/codec/decode", json=decode_body(sealed[0]))
            assert alone.status_code == 200, alone.text
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    decodes = [line for line in handler.lines if line.startswith("codec:")]
    assert decodes == ["codec: ui-viewer decoded 2 payload(s) of namespace default",
                       "codec: ui-viewer decoded 1 payload(s) of namespace ?"], handler.lines
    assert not any(SECRET in line or viewer in line or viewer[-12:] in line for line in handler.lines)
    assert [json.loads(base64.b64decode(p["data"])) for p in answer.json()["payloads"]] == [SECRET, "second"]


async def test_encode_encrypts_under_the_first_key_for_a_caller_with_the_scope(codec_service):  # noqa: F811
    """POST /codec/encode answers the payloads encrypted under the ring's first key (k2 once it leads), with no
    clear text in them, which /codec/decode and a worker's codec read back; 401 without a token, 403 without
    payloads:decode."""
    codec.configure(f"{NEW},{OLD}")  # the second phase of a rotation: k2 encrypts, k1 still decrypts
    body = decode_body(clear(SECRET), clear("second"))
    async with codec_service.client() as anonymous:
        refused = await anonymous.post("/codec/encode", json=body)
        assert refused.status_code == 401 and SECRET not in refused.text
    async with codec_service.client(codec_service.token("approver", "approvals:read", "approvals:decide")) as http:
        refused = await http.post("/codec/encode", json=body)
        assert refused.status_code == 403 and SECRET not in refused.text
    async with codec_service.client(codec_service.token("ui-viewer", "payloads:decode")) as http:
        encoded = await http.post("/codec/encode", json=body)
        assert encoded.status_code == 200, encoded.text
        sealed = encoded.json()["payloads"]
        assert len(sealed) == 2 and SECRET not in encoded.text
        for payload in sealed:
            assert metadata(payload)["encoding"] == codec.ENCODING
            assert metadata(payload)[codec.KEY_ID_METADATA] == b"k2"
            assert SECRET.encode() not in base64.b64decode(payload["data"])
        decoded = await http.post("/codec/decode", json=encoded.json())
        assert decoded.status_code == 200, decoded.text
    assert [metadata(p)["encoding"] for p in decoded.json()["payloads"]] == [b"json/plain", b"json/plain"]
    assert [json.loads(base64.b64decode(p["data"])) for p in decoded.json()["payloads"]] == [SECRET, "second"]
    # A worker holding only k2 reads what the service encoded (the UI's signals and starts reach workers so).
    worker = codec.EncryptionCodec(codec.KeyRing.parse(NEW))
    read = await worker.decode([json_format.ParseDict(p, Payload()) for p in sealed])
    assert [json.loads(p.data) for p in read] == [SECRET, "second"]


async def test_encode_refuses_a_body_of_another_shape(codec_service):  # noqa: F811
    """/codec/encode of something that is not {"payloads": [...]} answers 422 saying what it expects."""
    async with codec_service.client(codec_service.token("ui-viewer", "payloads:decode")) as http:
        for bad in ({"payload": []}, {"payloads": "x"}, [1, 2]):
            r = await http.post("/codec/encode", json=bad)
            assert r.status_code == 422 and '{"payloads": [' in r.json()["detail"], r.text
