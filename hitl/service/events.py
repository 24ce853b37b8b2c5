"""``GET /approvals/events``: a server-sent events stream of the audit trail, for inboxes and bots.

Each event of an approval's history (requested, decided, reminded, escalated, expired, refused,
changed, cancelled) is sent once, in the order the trail committed them, with an ``id`` that
``Last-Event-ID`` resumes after. An event is sent only once every transaction that could still
add an earlier one has ended, so a reconnecting client never misses one that committed late.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterable, AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from hitl.errors import InvalidInputError, NotAuthenticatedError, TooManyRequestsError
from hitl.identity import Principal
from hitl.service._state import ServiceState, state
from hitl.service.approvals import reader
from hitl.service.auth import authenticate
from hitl.service.errors import AUTHENTICATED, problems
from hitl.store import events as _trail

router = APIRouter(prefix="/approvals", tags=["events"], responses=AUTHENTICATED)

# The trail's event kinds, as the stream names them (the exact kind is in the data).
EVENT_NAMES = {"requested": "requested", "confirmed": "decided", "rejected": "decided", "input_provided": "decided",
               "result_provided": "decided", "approval_added": "decided", "reminded": "reminded",
               "escalated": "escalated", "expired": "expired", "refused": "refused", "changed": "changed",
               "cancelled": "cancelled", "executed": "executed"}
POLL_SECONDS = 0.2
RECHECK_SECONDS = 5.0
"""How often an open stream checks its credential again (revoked, expired, scope)."""
HEARTBEAT_SECONDS = 15.0
_BATCH = 500
_CURSOR = re.compile(r"^(\d{1,20})\.(\d{1,20})$")


def _cursor(text: str) -> tuple[int, int]:
    match = _CURSOR.match(text.strip())
    # A transaction id is an unsigned 64-bit number (xid8), an event id a bigint.
    if match is None or int(match.group(1)) >= 2 ** 64 or int(match.group(2)) >= 2 ** 63:
        raise InvalidInputError(f"Last-Event-ID {text[:60]!r}: not an id this stream sent (<tx>.<id>)")
    return int(match.group(1)), int(match.group(2))


def resume_after(
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[str | None, Query(max_length=64, description="Resume after this event id (as Last-Event-ID).")] = None,
) -> tuple[int, int] | None:
    """Where a reconnecting client left off (checked before the stream starts, so a bad id is a 422)."""
    resume = last_event_id or after
    return _cursor(resume) if resume else None


async def stream_slot(principal: Annotated[Principal, Depends(reader)],
                      s: Annotated[ServiceState, Depends(state)]) -> AsyncIterator[None]:
    """One of the principal's few open streams (429 past ``max_streams_per_principal``), held until the stream ends."""
    held = s.streams.get(principal.name, 0)
    if held >= s.config.max_streams_per_principal:
        raise TooManyRequestsError(f"{principal.name} has {held} approval event streams open, the most one principal may "
                                   "hold: close one first", retry_after=HEARTBEAT_SECONDS)
    s.streams[principal.name] = held + 1
    try:
        yield
    finally:
        s.streams[principal.name] -= 1
        if not s.streams[principal.name]:
            del s.streams[principal.name]


@router.get("/events", response_class=EventSourceResponse, summary="Stream approval events",
            responses=problems(429))
async def stream(
    request: Request, principal: Annotated[Principal, Depends(reader)], s: Annotated[ServiceState, Depends(state)],
    position: Annotated[tuple[int, int] | None, Depends(resume_after)],
    slot: Annotated[None, Depends(stream_slot, scope="request")],
) -> AsyncIterable[ServerSentEvent]:
    """Events of the approvals the caller may see, from now on, or after ``Last-Event-ID``. The credential is
    checked again every few seconds: once it is revoked or expired (or lacks the scope), the stream sends
    ``signed-out`` and ends."""
    credential = (request.headers.get("authorization") or "").partition(" ")[2].strip()
    recheck_at = time.monotonic() + RECHECK_SECONDS
    if position is None:  # from now: everything that committed before this moment is history
        position = (await _trail.horizon(s.db), 0)
    # A reader sees every approval; a decider alone, those it may decide (hitl._core.approvals.may_see).
    feed = _trail.TrailFeed(s.db, None if principal.has("approvals:read") else principal.approver_names())
    quiet = 0.0
    yield ServerSentEvent(comment="hitl approval events", retry=2000)
    while not await request.is_disconnected():
        if time.monotonic() >= recheck_at:
            ended = await _still_holds(s, credential)
            if ended is not None:
                yield ServerSentEvent(event="signed-out", data={"detail": ended})
                return
            recheck_at = time.monotonic() + RECHECK_SECONDS
        rows = await feed.after(position, _BATCH)
        for row in rows:
            position = (int(row["tx"]), row["n"])
            yield ServerSentEvent(id=f"{position[0]}.{position[1]}", event=EVENT_NAMES.get(row["kind"], row["kind"]),
                                  data=_data(row))
        if len(rows) == _BATCH:
            continue
        await asyncio.sleep(POLL_SECONDS)
        quiet += POLL_SECONDS
        if quiet >= HEARTBEAT_SECONDS:
            quiet = 0.0
            yield ServerSentEvent(comment="keep-alive")


async def _still_holds(s: ServiceState, credential: str) -> str | None:
    """None while the stream's credential still proves a reader; else why it no longer does."""
    try:
        principal = await authenticate(s, credential)
    except NotAuthenticatedError as exc:
        return str(exc)
    if not (principal.has("approvals:read") or principal.has("approvals:decide")):
        return f"{principal.name} no longer holds approvals:read or approvals:decide"
    return None


def _data(row: dict[str, Any]) -> dict[str, Any]:
    context = row["context"] or {}
    return {"approval_id": row["approval_id"], "seq": row["seq"], "kind": row["kind"], "payload": row["payload"],
            "at": row["at"].timestamp(), "status": row["status"], "run_id": row["run_id"], "team_run_id": row["team_run_id"],
            "agent_name": row["agent_name"], "requirement_kind": row["requirement_kind"],
            "tool_name": context.get("tool_name"), "arguments": context.get("arguments"),
            "approvers": (context.get("policy") or {}).get("approvers") or [], "deadline": context.get("deadline")}
