"""``/links/{token}``: one-click decision links, as small server-rendered pages.

GET shows what the link would decide and a form; it changes nothing, so a mail scanner that
prefetches links decides nothing. Only the form's POST decides, through the same core as
``POST /approvals/{id}/resolve``, as the link's approver, signed by the service's key in strict
mode. Each link decides once (its id is recorded before the decision and released only when the
decision failed for a reason a retry may not meet).

A token in a URL is a bearer credential: uvicorn's access log prints request paths, so
``hitl.service.redaction`` (installed as the app is made) cuts them out.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
from datetime import UTC, datetime
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hitl._core import approvals as _approvals
from hitl.errors import ApprovalConflictError, HitlError, InvalidDecisionError, LinksNotConfiguredError, PayloadTooLargeError
from hitl.identity import Principal, reserved_prefix
from hitl.security import links
from hitl.service import errors
from hitl.service._state import ServiceState, State
from hitl.store.records import StoredApproval

__all__ = ["router"]

router = APIRouter(include_in_schema=False)  # pages for people, not part of the JSON API
log = logging.getLogger("hitl.service")

MAX_FORM_BYTES = 16 * 1024
MAX_REASON_CHARS = 4000
_STYLE = ("body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}"
          "pre{background:#f4f4f4;padding:.75rem;overflow:auto;white-space:pre-wrap}th{text-align:left;padding-right:1rem}"
          "button{font-size:1rem;padding:.5rem 1.25rem}textarea{width:100%}.refused{color:#8a1c1c}")
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
HEADERS = {
    "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
_VERB = {"approved": "Approve", "rejected": "Reject"}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    text = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<meta name=\"robots\" content=\"noindex\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return HTMLResponse(text, status_code=status, headers=HEADERS)


def _refusal(exc: HitlError) -> HTMLResponse:
    status = errors.status_of(exc)  # the JSON API's map: the page and the API answer alike
    if status >= 500:
        log.warning("link refused: %s: %s", type(exc).__name__, links.redact(str(exc)))
    titles = {410: "This link has expired", 409: "Already decided", 403: "This link cannot decide",
              404: "No such approval", 503: "Links are not available"}
    return _page(titles.get(status, "The decision was not made"),
                 f"<p class=\"refused\">{html.escape(links.redact(str(exc)))}</p>", status)


def _when(t: float | None) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if t is not None else "none"


def _principal(claims: links.LinkClaims) -> Principal:
    # approvals:read lets the record be found whoever the approver is now, so a link whose approver
    # the policy no longer names is refused by the run (403, kept on the trail as `refused`).
    # Read access leaks nothing here: the link already names its one approval.
    return Principal(name=claims.approver, scopes=frozenset({"approvals:read", "approvals:decide"}), via="link",
                     credential_id=f"link:{claims.link_id}")


async def _checked(s: ServiceState, token: str) -> tuple[links.LinkClaims, StoredApproval]:
    """The link's claims and its approval, if the link could decide it now."""
    secret = s.config.link_secret
    if secret is None:
        raise LinksNotConfiguredError("this service has no link secret (HITL_LINK_SECRET), so it takes no "
                                      "one-click links: decide in the inbox or through the API")
    claims = links.verify_token(secret.get_secret_value(), token)
    if reserved_prefix(claims.approver) is not None:  # workers mint none; a link for one decides nothing
        raise links.LinkInvalidError(f"this link names {claims.approver[:60]!r} as its approver, a reserved name no "
                                     "link may decide as: decide in the inbox or through the API")
    if await links.used(s.db, claims.link_id):
        raise links.LinkUsedError(f"this link to approval {claims.approval_id!r} has already been used: each link "
                                  "decides once")
    record = await _approvals.get(s.db, _principal(claims), claims.approval_id)
    if record.arguments_digest != claims.arguments_digest or record.run_id != claims.run_id:
        raise links.LinkInvalidError(f"this link was made for other arguments than approval {claims.approval_id!r} "
                                     "asks about: it decides nothing")
    if record.status != "pending":
        by = f" by {record.resolved_by}" if record.resolved_by else ""
        at = f" at {_when(record.resolved_at)}" if record.resolved_at else ""
        raise ApprovalConflictError(f"approval {claims.approval_id!r} was already decided: {record.status}{by}{at}",
                                    status=record.status, resolved_by=record.resolved_by, resolved_at=record.resolved_at)
    if claims.decision == "approved" and record.requirement_kind != "confirmation":
        raise InvalidDecisionError(f"approval {claims.approval_id!r} needs {record.requirement_kind}: a link can "
                                   "only reject it; give the answer in the inbox or through the API")
    return claims, record


@router.get("/links/{token}", response_class=HTMLResponse)
async def show(token: str, s: State) -> HTMLResponse:
    """What the link would decide, and the form that decides it. Changes nothing."""
    try:
        claims, record = await _checked(s, token)
    except HitlError as exc:
        return _refusal(exc)
    context = record.context
    e = html.escape
    arguments = json.dumps(context.get("arguments", {}), indent=2, sort_keys=True, ensure_ascii=False, default=str)
    facts = [("Tool", context.get("tool_name") or ""), ("Agent", record.agent_name), ("Approval", claims.approval_id),
             ("Decision", _VERB[claims.decision].lower()), ("Deciding as", claims.approver),
             ("Deadline", _when(context.get("deadline"))), ("Link expires", _when(claims.expires_at))]
    rows = "".join(f"<tr><th scope=\"row\">{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in facts)
    reason = ("<p><label for=\"reason\">Reason (told to the agent)</label><br>"
              f"<textarea id=\"reason\" name=\"reason\" rows=\"3\" maxlength=\"{MAX_REASON_CHARS}\"></textarea></p>"
              if claims.decision == "rejected" else "")
    verb = _VERB[claims.decision]
    body = (f"<table>{rows}</table><h2>Arguments</h2><pre>{e(arguments)}</pre>"
            f"<form method=\"post\">{reason}<p><button type=\"submit\">{verb} as {e(claims.approver)}</button></p></form>"
            "<p><small>Nothing is decided until you press the button. This link works once.</small></p>")
    return _page(f"{verb} {context.get('tool_name') or 'this call'}?", body)


@router.post("/links/{token}", response_class=HTMLResponse)
async def decide(token: str, request: Request, s: State) -> HTMLResponse:
    """Make the link's decision as its approver, once."""
    try:
        reason = await _reason(request)
        claims, _ = await _checked(s, token)
        if not await links.claim(s.db, claims):
            raise links.LinkUsedError(f"this link to approval {claims.approval_id!r} has already been used")
        body = _approvals.ResolveRequest(status=claims.decision, reason=reason if claims.decision == "rejected" else None)
        try:
            result = await _approvals.resolve(await s.temporal(), s.db, _principal(claims), claims.approval_id, body,
                                              wait=min(s.config.resolve_wait_seconds, 10.0), signer=s.signer)
        except ApprovalConflictError:
            raise  # decided by someone else: the link can never decide now, so it stays used
        except Exception:
            await links.release(s.db, claims.link_id)  # refused or failed: the person may try again
            raise
    except HitlError as exc:
        return _refusal(exc)
    done = "Approved" if claims.decision == "approved" else "Rejected"
    e = html.escape
    state = "still working on it" if result.waiting else result.run.status.value
    return _page(f"{done}", f"<p>{e(done)} approval {e(claims.approval_id)} as {e(result.resolved_by)}.</p>"
                            f"<p>The run is now {e(state)}. You can close this page.</p>")


async def _reason(request: Request) -> str | None:
    """The optional reason of the form (``application/x-www-form-urlencoded``), bounded."""
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        raise PayloadTooLargeError(f"the form is over {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(raw.decode(), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise InvalidDecisionError("the form is not URL-encoded text") from None
    reason = (fields.get("reason") or [""])[0].strip()
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidDecisionError(f"reason: over {MAX_REASON_CHARS} characters")
    return reason or None
