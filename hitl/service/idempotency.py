"""``Idempotency-Key``: a retried POST gets the first answer and changes nothing.

The first request with a key claims it (a row with no answer yet), runs, and stores its answer,
errors included; a retry with the same key and the same request gets that answer back. The same
key on a different request is refused (422); while the first is still running, a retry gets 409
with ``Retry-After``. Keys are per principal and kept for a day.

A claim is a lease of :data:`LEASE_SECONDS`, renewed by the request holding it every third of
that while it runs. A request whose service died renews nothing, so a retry after the lease takes
the key over and runs the request again (a decision the run already took is refused by the run
then, with who took it), instead of answering 409 for a day. Each claim has its own id: a request
that outlived its lease neither stores its answer over the new holder's nor deletes its claim.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from hitl.db.postgres import PostgresDb
from hitl.errors import HitlError, InvalidInputError
from hitl.identity import Principal
from hitl.service.errors import MEDIA_TYPE, problem, response_of
from hitl.store import idempotency as _store
from hitl.store.idempotency import Claim

KEPT_FOR = "1 day"
LEASE_SECONDS = 30.0
"""How long a claim holds unrenewed; its request renews it every third of this while it runs."""
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[ -~]+$",
                                              description="Retries with this key get the first answer: 1 to 255 "
                                                          "printable ASCII characters, per principal, kept a day.")]
"""A route's parameter: the request's ``Idempotency-Key`` header."""
_HEADER = "Idempotent-Replayed"
log = logging.getLogger("hitl.service")


def _json(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else jsonable_encoder(value)


def _check(key: str) -> None:
    if not 1 <= len(key) <= 255 or not key.isprintable() or not key.isascii():
        raise InvalidInputError("Idempotency-Key: 1 to 255 printable ASCII characters")


def request_digest(method: str, path: str, body: bytes) -> str:
    """What a key is bound to: sha256 of the method, the path and the body."""
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


async def run_once(
    request: Request, db: PostgresDb, principal: Principal, key: str | None,
    call: Callable[[], Awaitable[Any]], *, status_code: int = 200,
) -> JSONResponse:
    """Answer ``call()`` as JSON, at most once per (principal, key) while its claim is held."""
    if key is None:
        return JSONResponse(_json(await call()), status_code=status_code)
    _check(key)
    digest = request_digest(request.method, request.url.path, await request.body())
    mine = Claim(principal.name, key, uuid.uuid4().hex)
    # One round trip: drop old keys; claim the key, or take over a claim whose lease ran out; read it.
    claimed = await _store.claim(db, mine, digest, kept_for=KEPT_FOR, lease_seconds=LEASE_SECONDS)
    if claimed.taken:
        log.warning("%s %s: an Idempotency-Key of %s whose request stopped renewing its claim (its service died?) "
                    "runs again", request.method, request.url.path, principal.name)
    if not (claimed.inserted or claimed.taken):
        first = claimed.row
        if first is None:  # expired between the statements: rare; the caller may simply retry
            return problem(409, "IdempotencyKeyInUse", f"Idempotency-Key {key!r} is being reused; retry",
                           instance=request.url.path)
        if first["request_hash"] != digest:
            raise InvalidInputError(f"Idempotency-Key {key!r} was used for a different request; use a new key")
        if first["status_code"] is None:
            wait = max(1, math.ceil(float(first["lease_left"])))
            return problem(409, "IdempotencyKeyInUse", f"a request with Idempotency-Key {key!r} is still in progress; "
                           "retry later", instance=request.url.path, headers={"Retry-After": str(wait)})
        kind = MEDIA_TYPE if first["status_code"] >= 400 else "application/json"  # an error replays as the error it was
        return JSONResponse(first["body"], status_code=first["status_code"], headers={_HEADER: "true"}, media_type=kind)
    # What this key's first request and any request that takes it over share, and no later use of the key
    # (after it expired) or another service's table does: for routes that make something once per key.
    assert claimed.row is not None  # the claim made or taken is read in the same round trip
    request.state.idempotency_origin = f"{db.approvals_table}\n{principal.name}\n{key}\n{claimed.row['created_at'].isoformat()}"
    renewing = asyncio.create_task(_renew(db, mine))
    try:
        try:
            response = JSONResponse(_json(await call()), status_code=status_code)
        except HitlError as exc:
            response = response_of(exc, request.url.path)
        finally:
            await _stop(renewing)
    except BaseException:
        # Nothing to replay: the retry runs again (a decision the run already took is refused then).
        await _store.release(db, mine)
        raise
    if response.status_code >= 500:  # not an answer worth keeping: let the retry try again
        await _store.release(db, mine)
        return response
    try:
        await _store.answer(db, mine, response.status_code, json.loads(bytes(response.body)))
    except HitlError:  # an answer PostgreSQL cannot hold: not kept, so a retry runs again (and is refused by the run)
        await _store.release(db, mine)
    return response


async def _renew(db: PostgresDb, mine: Claim) -> None:
    """Keep the claim's lease while its request runs; stop once another request has taken it over."""
    while True:
        await asyncio.sleep(LEASE_SECONDS / 3)
        try:
            held = await _store.renew(db, mine)
        except Exception as exc:  # PostgreSQL away for a moment: the next renewal may reach it
            log.warning("could not renew an Idempotency-Key's claim: %s", exc)
            continue
        if not held:
            return


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.wait([task])  # its own cancellation stays inside it; this request's would come through
