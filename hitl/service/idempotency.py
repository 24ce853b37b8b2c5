"""``Idempotency-Key``: a retried POST gets the first answer and changes nothing.

The first request with a key claims it (a row with no answer yet), runs, and stores its answer,
errors included; a retry with the same key and the same request gets that answer back. The same
key on a different request is refused (422); while the first is still running, a retry gets 409.
Keys are per principal and kept for a day.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from hitl.db.postgres import PostgresDb
from hitl.errors import HitlError, InvalidInputError
from hitl.identity import Principal
from hitl.service.errors import response_of

KEPT_FOR = "1 day"
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", description="Retries with this key get the first answer.")]
"""A route's parameter: the request's ``Idempotency-Key`` header."""
_HEADER = "Idempotent-Replayed"


def _json(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else jsonable_encoder(value)


def _check(key: str) -> None:
    if not 1 <= len(key) <= 255 or not key.isprintable() or not key.isascii():
        raise InvalidInputError("Idempotency-Key: 1 to 255 printable ASCII characters")


async def run_once(
    request: Request, db: PostgresDb, principal: Principal, key: str | None,
    call: Callable[[], Awaitable[Any]], *, status_code: int = 200,
) -> JSONResponse:
    """Answer ``call()`` as JSON, at most once per (principal, key)."""
    if key is None:
        return JSONResponse(_json(await call()), status_code=status_code)
    _check(key)
    body = await request.body()
    digest = hashlib.sha256(b"\n".join([request.method.encode(), request.url.path.encode(), body])).hexdigest()
    table = sql.Identifier(f"{db.approvals_table}_idempotency")
    await db._aquery(sql.SQL("DELETE FROM {} WHERE created_at < now() - %s::interval").format(table), [KEPT_FOR])
    claimed = await db._aquery(
        sql.SQL("INSERT INTO {} (principal, key, request_hash) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING key")
        .format(table), [principal.name, key, digest])
    if not claimed:
        [first] = await db._aquery(
            sql.SQL("SELECT request_hash, status_code, body FROM {} WHERE principal = %s AND key = %s").format(table),
            [principal.name, key]) or [None]
        if first is None:  # expired between the two statements: rare; the caller may simply retry
            return JSONResponse({"detail": f"Idempotency-Key {key!r} is being reused; retry", "error": "Conflict"}, 409)
        if first["request_hash"] != digest:
            raise InvalidInputError(f"Idempotency-Key {key!r} was used for a different request; use a new key")
        if first["status_code"] is None:
            return JSONResponse({"detail": f"a request with Idempotency-Key {key!r} is still in progress; retry later",
                                 "error": "Conflict"}, status_code=409)
        return JSONResponse(first["body"], status_code=first["status_code"], headers={_HEADER: "true"})
    try:
        response = JSONResponse(_json(await call()), status_code=status_code)
    except HitlError as exc:
        response = response_of(exc)
    except BaseException:
        # Nothing to replay: the retry runs again (a decision the run already took is refused then).
        await db._aquery(sql.SQL("DELETE FROM {} WHERE principal = %s AND key = %s").format(table), [principal.name, key])
        raise
    if response.status_code >= 500:  # not an answer worth keeping: let the retry try again
        await db._aquery(sql.SQL("DELETE FROM {} WHERE principal = %s AND key = %s").format(table), [principal.name, key])
        return response
    try:
        await db._aquery(
            sql.SQL("UPDATE {} SET status_code = %s, body = %s WHERE principal = %s AND key = %s").format(table),
            [response.status_code, Jsonb(json.loads(response.body)), principal.name, key])
    except HitlError:  # an answer PostgreSQL cannot hold: not kept, so a retry runs again (and is refused by the run)
        await db._aquery(sql.SQL("DELETE FROM {} WHERE principal = %s AND key = %s").format(table), [principal.name, key])
    return response
