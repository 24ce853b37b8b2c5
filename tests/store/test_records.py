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
