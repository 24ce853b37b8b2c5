"""Decisions on the audit trail whose signature fails: each checked against the trusted keys and against
what the trail says was decided, by whom, on which approval (``PostgresDb.verify_decisions``,
``hitl audit verify --keys``). The rows come from the store (``hitl.store.verify.signed_rows``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hitl._wire import digest
from hitl.security import signing

# Event kinds that record a decision or a change, and the action a signature of it names.
ACTIONS = {"confirmed": "confirm", "approval_added": "confirm", "rejected": "reject", "input_provided": "provide_input",
           "result_provided": "provide_result", "changed": "change"}
_SYSTEM = {"deadline", "remembered"}
"""Decisions the run made itself (a deadline, a remembered approval): nobody signs them."""


def problems(rows: Iterable[dict[str, Any]], keys: Mapping[str, Ed25519PublicKey], *, require_signed: bool) -> list[dict[str, Any]]:
    """The decisions of ``rows`` (events joined with their approval) whose signature fails, or is missing when required.

    Needs the trail's rows and events to be what was written: the other checks here tell.
    """
    found = []
    for row in rows:
        kind, payload = row["kind"], row["payload"] or {}
        if kind not in ACTIONS or payload.get("via") in _SYSTEM:
            continue
        where = {"approval_id": row["approval_id"], "seq": row["seq"], "kind": kind}
        token = payload.get("signature")
        if token is None:
            if require_signed:
                found.append({**where, "reason": "the decision is not signed"})
            continue
        why = _mismatch(row, payload, token, keys)
        if why is not None:
            found.append({**where, "reason": why})
    return found


def _mismatch(row: dict[str, Any], payload: dict[str, Any], token: str, keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    try:
        claims = signing.verify(token, keys)
    except ValueError as exc:
        return f"the signature does not hold: {exc}"
    mine = {(row["run_id"], row["requirement_id"])}
    if row.get("team_run_id"):
        mine.add((row["team_run_id"], row["approval_id"]))
    if (claims.run_id, claims.requirement_id) not in mine:
        return f"signed for run {claims.run_id} requirement {claims.requirement_id!r}, not this approval"
    if claims.action != ACTIONS[row["kind"]]:
        return f"signed for {claims.action!r}, but the trail records {row['kind']!r}"
    decider = payload.get("changed_by") if row["kind"] == "changed" else payload.get("resolved_by")
    if claims.sub != decider:
        return f"signed by {claims.sub!r}, but the trail says {decider!r}"
    context = row.get("context") or {}
    asked = context.get("original_arguments", context.get("arguments"))
    if row["kind"] != "input_provided" and asked is not None and claims.arguments != digest(asked):
        return "signed for other arguments than the approval's"
    return None
