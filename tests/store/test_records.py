"""One declaration of an approval record's fields (``hitl._wire.ApprovalFields``) serves the event the workflow
records, the store's record, the service's bodies and the CLI: what each of them looked like before they
shared it is pinned here."""

from __future__ import annotations

from hitl._wire import ApprovalEvent, ApprovalFields

EVENT_FIELDS = ["approval_id", "seq", "kind", "at", "payload", "run_id", "requirement_id", "session_id", "user_id",
                "agent_name", "team_run_id", "requirement_kind", "approval_type", "status", "context", "arguments_digest",
                "created_at", "resolved_by", "resolved_at", "resolution"]


def test_the_event_recorded_in_histories_serializes_as_it_always_did():
    """Field names, order, types and defaults of the mirror's event: what running workflows' histories hold."""
    assert list(ApprovalEvent.model_fields) == EVENT_FIELDS
    decided = ApprovalEvent(approval_id="r/q", seq=2, kind="approved", at=1.5, payload={"x": 1}, run_id="r",
                            requirement_id="q", agent_name="a", requirement_kind="confirmation", approval_type="required",
                            status="approved", context={"tool_name": "t"}, arguments_digest="d",
                            created_at=1_800_000_000.25, resolved_at=1_800_000_001.5, resolved_by="bob",
                            resolution={"reason": None})
    assert decided.model_dump_json() == (
        '{"approval_id":"r/q","seq":2,"kind":"approved","at":1.5,"payload":{"x":1},"run_id":"r","requirement_id":"q",'
        '"session_id":null,"user_id":null,"agent_name":"a","team_run_id":null,"requirement_kind":"confirmation",'
        '"approval_type":"required","status":"approved","context":{"tool_name":"t"},"arguments_digest":"d",'
        '"created_at":1800000000.25,"resolved_by":"bob","resolved_at":1800000001.5,"resolution":{"reason":null}}')
    requested = ApprovalEvent(approval_id="r/q", seq=1, kind="requested", at=1, run_id="r", requirement_id="q",
                              agent_name="a", requirement_kind="confirmation", approval_type="required", status="pending",
                              arguments_digest="d", created_at=1)
    assert requested.model_dump_json() == (
        '{"approval_id":"r/q","seq":1,"kind":"requested","at":1.0,"payload":{},"run_id":"r","requirement_id":"q",'
        '"session_id":null,"user_id":null,"agent_name":"a","team_run_id":null,"requirement_kind":"confirmation",'
        '"approval_type":"required","status":"pending","context":{},"arguments_digest":"d","created_at":1.0,'
        '"resolved_by":null,"resolved_at":null,"resolution":null}')
    assert ApprovalEvent.model_validate_json(decided.model_dump_json()) == decided
    assert set(ApprovalFields.model_fields) < set(ApprovalEvent.model_fields)


RECORD_FIELDS = ["id", "run_id", "requirement_id", "session_id", "user_id", "agent_name", "team_run_id", "requirement_kind",
                 "approval_type", "status", "context", "arguments_digest", "created_at", "resolved_by", "resolved_at",
                 "resolution"]


def test_the_services_bodies_keep_their_openapi_shape():
    """The bodies of GET /approvals and GET /approvals/{id}: properties in their order, types, what is required."""
    from hitl.service.models import ApprovalDetail, ApprovalEventOut, ApprovalRecord

    record = ApprovalRecord.model_json_schema(mode="serialization")
    assert list(record["properties"]) == [*RECORD_FIELDS, "escalation_level", "may_decide"]
    assert record["required"] == ["id", "run_id", "requirement_id", "agent_name", "requirement_kind", "approval_type",
                                  "status", "context", "arguments_digest", "created_at"]
    assert record["properties"]["created_at"] == {"title": "Created At", "type": "integer"}
    assert record["properties"]["resolved_at"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None,
                                                   "title": "Resolved At"}
    assert record["properties"]["context"] == {"additionalProperties": True, "title": "Context", "type": "object"}
    assert record["description"] == "An approval record, as ``PostgresDb.get_approval`` returns it (times in epoch seconds)."
    detail = ApprovalDetail.model_json_schema(mode="serialization")
    assert list(detail["properties"]) == [*RECORD_FIELDS, "escalation_level", "may_decide", "run_status", "run_status_error",
                                          "answer_schema", "policy", "deadline", "approvals", "events"]
    assert detail["required"] == [*record["required"], "run_status", "answer_schema", "events"]
    event = ApprovalEventOut.model_json_schema(mode="serialization")
    assert list(event["properties"]) == ["seq", "kind", "payload", "at", "prev_hash", "hash"] and "description" not in event
    assert event["required"] == list(event["properties"])


def _row_columns(db, approval_id: str, sql: str) -> None:
    """Change a row as its table's owner would, triggers off (a row from before a migration)."""
    import psycopg

    with psycopg.connect(db.db_url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {db.approvals_table} DISABLE TRIGGER USER")
        try:
            conn.execute(sql.replace("{t}", db.approvals_table), [approval_id])
        finally:
            conn.execute(f"ALTER TABLE {db.approvals_table} ENABLE TRIGGER USER")


async def test_the_facade_answers_agnos_dicts_as_before(db, monkeypatch):
    """``PostgresDb.get_approval(s)`` answer plain dicts: the same keys, in the same order, with the same types."""
    from hitl.store import agno

    def ev(aid: str, seq: int, status: str, **fields) -> ApprovalEvent:
        run, requirement = aid.split("/")
        return ApprovalEvent(**{"approval_id": aid, "seq": seq, "kind": "requested" if seq == 1 else status,
                                "at": 1_700_000_000 + seq + 0.25, "run_id": run, "requirement_id": requirement,
                                "agent_name": "agent", "requirement_kind": "confirmation", "approval_type": "required",
                                "status": status, "context": {"tool_name": "pay", "arguments": {"a": 1}, "deadline": 1.9e9},
                                "arguments_digest": "dd", "created_at": 1_700_000_000.75, **fields})

    await db.write_events([ev("run-1/req-1", 1, "pending", user_id="u1", session_id="s1"),
                           ev("run-2/req-1", 1, "pending"),
                           ev("run-2/req-1", 2, "rejected", resolved_by="bob", resolved_at=1_700_000_100.9,
                              resolution={"reason": "no"}),
                           ev("team-1.m.1-c/req-1", 1, "pending", team_run_id="team-1", context={"tool_name": "ask"})])
    _row_columns(db, "run-2/req-1", "UPDATE {t} SET updated_at = NULL WHERE id = %s")  # as before migration 009
    monkeypatch.setattr(agno, "_team_namer", lambda agent, team_run_id, db=None: "crew" if team_run_id else None)
    pending, rejected, member = (db.get_approval(i) for i in ("run-1/req-1", "run-2/req-1", "team-1.m.1-c/req-1"))
    listed, total = db.get_approvals(sort_by="created_at", sort_order="asc")
    assert list(pending) == ["id", "run_id", "requirement_id", "session_id", "user_id", "agent_name", "requirement_kind",
                             "approval_type", "status", "context", "arguments_digest", "created_at", "resolved_by",
                             "resolved_at", "resolution", "team_run_id", "updated_at", "deleted_at", "source_type",
                             "source_name", "pause_type", "tool_name", "tool_args", "agent_id", "team_id", "workflow_id",
                             "schedule_id", "schedule_run_id", "expires_at", "resolution_data", "run_status"]
    assert pending == {
        "id": "run-1/req-1", "run_id": "run-1", "requirement_id": "req-1", "session_id": "s1", "user_id": "u1",
        "agent_name": "agent", "requirement_kind": "confirmation", "approval_type": "required", "status": "pending",
        "context": {"tool_name": "pay", "arguments": {"a": 1}, "deadline": 1.9e9, "tool_names": ["pay"],
                    "source_name": "agent"},
        "arguments_digest": "dd", "created_at": 1_700_000_000, "resolved_by": None, "resolved_at": None, "resolution": None,
        "team_run_id": None, "updated_at": 1_700_000_001, "deleted_at": None, "source_type": "agent", "source_name": "agent",
        "pause_type": "confirmation", "tool_name": "pay", "tool_args": {"a": 1}, "agent_id": "agent", "team_id": None,
        "workflow_id": None, "schedule_id": None, "schedule_run_id": None, "expires_at": 1_900_000_000,
        "resolution_data": None, "run_status": "paused"}
    assert all(type(pending[k]) is int for k in ("created_at", "updated_at", "expires_at"))
    assert (rejected["resolved_at"], rejected["updated_at"], rejected["resolution_data"], rejected["run_status"]) == \
        (1_700_000_100, 1_700_000_100, {"reason": "no"}, None)
    assert type(rejected["resolved_at"]) is int and type(rejected["updated_at"]) is int
    assert (member["source_type"], member["source_name"], member["team_id"], member["context"]) == \
        ("team", "crew", "crew", {"tool_name": "ask", "tool_names": ["ask"], "source_name": "crew"})
    assert listed == [pending, rejected, member] and total == 3
    assert [e["seq"] for e in db.get_approval_events("run-2/req-1")] == [1, 2]
    assert list(db.get_approval_events("run-2/req-1")[1]) == ["seq", "kind", "payload", "at", "prev_hash", "hash"]
    assert type(db.get_approval_events("run-2/req-1")[1]["at"]) is int
