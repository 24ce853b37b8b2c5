"""``POST /slack/interactions``: decisions from buttons in Slack (or anything that signs as Slack does).

A request is taken only when its signature verifies: ``X-Slack-Signature`` is ``v0=`` + the
HMAC-SHA256, keyed by ``HITL_SLACK_SIGNING_SECRET``, of ``v0:{X-Slack-Request-Timestamp}:{raw body}``,
and the timestamp is within five minutes of now (a captured request cannot be replayed later).
The Slack user decides as the hitl principal ``HITL_SLACK_USERS`` maps it to, and only then: the
mapping is an allowlist. That principal may decide, not read: an approval it is not an approver of
is answered as unknown. The body is Slack's ``block_actions`` payload (form field ``payload``);
its first action's ``action_id`` is ``approve`` or ``reject`` and its ``value`` the approval id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hitl._core import approvals as _approvals
from hitl.errors import ApprovalConflictError, HitlError, RequirementNotFoundError
from hitl.identity import Principal
from hitl.service import errors
from hitl.service._state import State

__all__ = ["router", "signature", "MAX_AGE_SECONDS"]

router = APIRouter(include_in_schema=False)  # Slack's protocol, not the JSON API
MAX_AGE_SECONDS = 300
MAX_BODY_BYTES = 256 * 1024
_DECISIONS: dict[str, Literal["approved", "rejected"]] = {"approve": "approved", "reject": "rejected"}
_SECONDS = re.compile(r"[0-9]{1,12}")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What Slack sends in ``X-Slack-Signature`` for this timestamp and raw body."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _answer(text: str, status: int = 200) -> JSONResponse:
    return JSONResponse({"response_type": "ephemeral", "replace_original": False, "text": text}, status_code=status)


def _action(body: bytes) -> tuple[str, Literal["approved", "rejected"], str] | None:
    """(Slack user id, decision, approval id) of a block_actions payload, or None if it is not one."""
    try:
        payload: Any = json.loads((parse_qs(body.decode(), max_num_fields=20).get("payload") or [""])[0])
        action = payload["actions"][0]
        user, action_id, value = payload["user"]["id"], action["action_id"], action["value"]
    except (ValueError, UnicodeDecodeError, KeyError, IndexError, TypeError):
        return None
    if payload.get("type") != "block_actions" or action_id not in _DECISIONS:
        return None
    if not all(isinstance(v, str) and 0 < len(v) <= 2000 for v in (user, value)):
        return None
    return user, _DECISIONS[action_id], value


@router.post("/slack/interactions")
async def interactions(request: Request, s: State) -> JSONResponse:
    """Verify Slack's signature, map the user through the allowlist, decide as that principal."""
    secret = s.config.slack_signing_secret
    if secret is None:
        return _answer("This hitl service takes no Slack actions: HITL_SLACK_SIGNING_SECRET is not set.", 503)
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    given = request.headers.get("x-slack-signature", "")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _answer(f"The request is over {MAX_BODY_BYTES} bytes.", 413)
    # ASCII digits, a few of them: str.isdigit() also takes "²" and other scripts' digits, and int() of
    # thousands of digits raises.
    if _SECONDS.fullmatch(timestamp) is None or abs(time.time() - int(timestamp)) > MAX_AGE_SECONDS:
        return _answer("Refused: the request's timestamp is missing or more than five minutes off.", 401)
    expected = signature(secret.get_secret_value(), timestamp, body)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return _answer("Refused: the request's signature does not verify.", 401)
    action = _action(body)
    if action is None:
        return _answer("Not understood: expected a block_actions payload whose action is approve or reject "
                       "with the approval id as its value.", 400)
    user, decision, approval_id = action
    name = s.config.slack_users.get(user)
    if name is None:
        return _answer(f"Slack user {user} may not decide approvals here (not in HITL_SLACK_USERS).", 403)
    # Deciding only: with approvals:read an allowlisted user could press buttons carrying any approval id
    # and learn from the answers which exist and who decided them. A decider sees only what it may decide.
    principal = Principal(name=name, scopes=frozenset({"approvals:decide"}), via="slack", credential_id=f"slack:{user}")
    try:
        # wait=0: Slack wants an answer within 3 seconds; the decision is in once the run has taken it.
        result = await _approvals.resolve(await s.temporal(), s.db, principal, approval_id,
                                          _approvals.ResolveRequest(status=decision), wait=0, signer=s.signer)
    except ApprovalConflictError as exc:
        return _answer(f"Not decided: {exc}")
    except RequirementNotFoundError:
        # 200: Slack shows the text of a 2xx only. The same words for unknown and not-yours tell nothing.
        return _answer(f"Not decided: approval {approval_id[:200]!r} is unknown, or not one {name} may decide.")
    except HitlError as exc:
        return _answer(f"Not decided: {exc}", errors.status_of(exc))
    verb = "Approved" if decision == "approved" else "Rejected"
    return _answer(f"{verb} {result.approval_id} as {result.resolved_by}; the run is {result.run.status.value}.")
