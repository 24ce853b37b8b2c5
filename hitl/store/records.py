"""Approval records as the store reads them back: typed, from the one declaration of their fields.

``Approval`` is an approval's record: the fields the mirror writes (``hitl._wire.ApprovalFields``, which the
workflow's ``ApprovalEvent`` carries too) under the approval's ``id``, times in whole epoch seconds. The
service's bodies and the CLI derive from it (``hitl._core.views``). ``StoredApproval``, what the store's
readers return, adds the row's own columns, from which ``PostgresDb`` makes Agno's record dict
(:meth:`StoredApproval.agno`, ``hitl.store.agno``). ``TrailEvent`` is one event of an approval's trail.

No SQL here: rows come from ``hitl.store.approvals``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import BaseModel

from hitl._wire import ApprovalFields
from hitl.store import agno


class _Identified(BaseModel):
    id: str
    """``<run_id>/<requirement_id>``: a team member's approval is under its own run's id."""


# Pydantic orders a model's fields from its last base to its first: the id comes first, then the record's
# fields in their declared order (the service's OpenAPI document lists them so).
class Approval(ApprovalFields, _Identified):
    """An approval's record: the fields the mirror writes, under the approval's id.

    Times are whole epoch seconds (the event's are the workflow's floats). ``context`` is what the
    mirror wrote with Agno's ``tool_names`` and ``source_name`` beside it (``hitl.store.agno``), as every
    reader has always been given it.
    """

    # Where the record differs from the event it was written from: times as read back (whole seconds), and
    # a context always there (the column is NOT NULL, and the service's body has always required it).
    context: dict[str, Any]
    created_at: int
    resolved_at: int | None = None


class StoredApproval(Approval):
    """An approval's record with the row's own columns: what the store's readers return."""

    team_name: str | None = None
    """The team the approval was made for: as the mirror wrote it, else as this process names it (None: no
    team, or none this process can name)."""
    updated_at: int
    """When the row last moved (its last event's time; on rows from before migration 009, its decision's or
    its creation's)."""
    deleted_at: int | None = None
    """Hidden by ``PostgresDb.delete_approval`` (a tombstone), or None."""

    def agno(self) -> dict[str, Any]:
        """Agno's approval record: hitl's keys and Agno's (``hitl.store.agno``), the dict ``PostgresDb``
        answers with. A dict, not this model: it is Agno's public shape, which Agno code reads and compares."""
        return agno.shape(self)


class TrailEvent(BaseModel):
    """One event of an approval's trail as read back, ``at`` in whole epoch seconds."""

    seq: int
    kind: str
    payload: dict[str, Any]
    at: int
    prev_hash: str
    hash: str


class Listed(NamedTuple):
    """A record of an inbox page, with what the page's query read beside it."""

    record: StoredApproval
    escalation_level: int
    """How many escalation steps have fired for it while pending (from its trail); 0 once decided."""
    key: Any
    """Its sort key, as a cursor after it names it (``hitl.store.queries.keyset_value``)."""


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def from_row(row: Mapping[str, Any]) -> StoredApproval:
    """A record from its row as selected (``hitl.store.queries.COLUMNS``): times to epoch seconds, the team
    named where the row does not name it, Agno's keys added to ``context``, ``updated_at`` filled on rows from
    before migration 009 (its last known move)."""
    created_at, resolved_at = _epoch(row["created_at"]), _epoch(row["resolved_at"])
    team = agno.team_of(row["team_name"], row["agent_name"], row["team_run_id"])
    return StoredApproval.model_validate({
        **{name: row[name] for name in Approval.model_fields},
        "context": agno.context(row["context"] or {}, agno.source_name(team, row["agent_name"], row["team_run_id"])),
        "created_at": created_at, "resolved_at": resolved_at,
        "team_name": team, "updated_at": _epoch(row["updated_at"]) if row["updated_at"] is not None
        else resolved_at or created_at,
        "deleted_at": _epoch(row["deleted_at"]),
    })


def event_from_row(row: Mapping[str, Any]) -> TrailEvent:
    """A trail event from its row as selected (seq, kind, payload, at, prev_hash, hash)."""
    return TrailEvent.model_validate({**row, "at": int(row["at"].timestamp())})
