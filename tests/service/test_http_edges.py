"""The service's edge: inputs that once answered 500, oversized bodies sent chunked, one per test."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.conftest import RunningService
from tests.service.test_service import paused, pay, pays
from tests.service.test_slack import SLACK_SECRET, interaction

DEEP = 300  # levels: past pydantic's serialization limit


def nested(levels: int) -> object:
    value: object = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.fixture
def edge_service(db, temporal_server):
    running = RunningService(db, slack_signing_secret=SLACK_SECRET, slack_users={"U0ALICE": "alice"}, max_body_bytes=64 * 1024)
    yield running
    running.stop()


async def test_json_nested_too_deep_in_a_decision_is_refused_with_422(make_agent, script, running_worker, db, edge_service):
    """Edited arguments or an external result nested hundreds of levels: 422 naming the depth, the run untouched."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), edge_service.client(edge_service.token("alice")) as alice:
        run, approval_id = await paused(agent, db)
        r = await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved", "arguments": nested(DEEP)})
        assert r.status_code == 422 and "deep" in r.text, r.text
        r = await alice.post(f"/runs/{run.run_id}/continue", json={"decisions": [
            {"action": "provide_result", "requirement_id": run.requirements[0].id, "result": nested(DEEP)}]})
        assert r.status_code == 422 and "deep" in r.text, r.text
        assert (await agent.aget_run(run.run_id)).is_paused


@pytest.mark.parametrize("timestamp", ["9" * 5000, "\u00b2", "１２３", "-1", "1e9", "0x10"])
async def test_a_slack_timestamp_that_is_no_number_of_seconds_is_refused_with_401(edge_service, timestamp):
    """isdigit() accepts superscripts and other scripts' digits; int() of 5,000 digits raises: both are 401 now."""
    body, headers = interaction("run-1/req-1", "U0ALICE")
    headers["x-slack-request-timestamp"] = timestamp
    raw = [(k.encode(), v.encode("utf-8")) for k, v in headers.items()]
    async with edge_service.client() as http:
        r = await http.post("/slack/interactions", content=body, headers=raw)
    assert r.status_code == 401 and "timestamp" in r.text, r.text


async def test_a_forged_listing_cursor_is_refused_with_422(edge_service):
    """A cursor holding a 400-digit number, or a time out of range, is no cursor of this listing."""
    async with edge_service.client(edge_service.token("alice", "approvals:read")) as alice:
        for sort_by, value in (("deadline", 10 ** 400), ("deadline", 1e308), ("created_at", "0001-01-01T00:00:00+14:00")):
            order = "asc" if sort_by == "deadline" else "desc"
            text = json.dumps([sort_by, order, value, "run-1/req-1"]).encode()
            cursor = base64.urlsafe_b64encode(text).decode().rstrip("=")
            r = await alice.get("/approvals", params={"sort_by": sort_by, "cursor": cursor})
            assert r.status_code == 422 and "cursor" in r.text, (value, r.text)


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
async def test_a_deadline_filter_out_of_range_is_refused_with_422(edge_service, when):
    async with edge_service.client(edge_service.token("alice", "runs:read")) as alice:
        r = await alice.get("/runs", params={"deadline_before": when})
    assert r.status_code == 422 and "deadline_before" in r.text, r.text


@pytest.mark.parametrize("last", ["99999999999999999999.0", "18446744073709551616.1", "1.99999999999999999999"])
async def test_a_last_event_id_out_of_range_is_refused_with_422(edge_service, last):
    """Ids the stream could never have sent: 422 before the stream starts, not a stream that dies."""
    async with edge_service.client(edge_service.token("alice", "approvals:read")) as alice:
        r = await alice.get("/approvals/events", headers={"Last-Event-ID": last})
    assert r.status_code == 422 and "Last-Event-ID" in r.text, r.text


def chunks(total: int, size: int = 16 * 1024):
    async def body():
        sent = 0
        while sent < total:
            yield b" " * min(size, total - sent)
            sent += size
    return body()


@pytest.mark.parametrize("path", ["/approvals/run-1/req-1/resolve", "/runs", "/codec/decode", "/codec/encode",
                                  "/slack/interactions"])
async def test_an_oversized_body_sent_chunked_gets_413_like_a_declared_one(edge_service, path):
    """No Content-Length, 128 KiB in 16 KiB chunks, over the 64 KiB limit: 413, as with Content-Length."""
    token = edge_service.token("alice", "admin")
    async with edge_service.client(token) as http:
        started = time.monotonic()
        r = await http.post(path, content=chunks(128 * 1024), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "limit" in r.text, (path, r.status_code, r.text)
        declared = await http.post(path, content=b" " * (128 * 1024), headers={"Content-Type": "application/json"})
        assert declared.status_code == 413, (path, declared.text)
        assert time.monotonic() - started < 30


async def test_a_time_filter_given_as_a_number_is_refused_as_the_document_says(edge_service):
    """The document says date-time: 0.5 (which pydantic alone would read as seconds since 1970) is a 422."""
    async with edge_service.client(edge_service.token("alice", "approvals:read", "runs:read")) as alice:
        for path, name in (("/approvals", "created_at_lte"), ("/approvals/count", "created_at_gte"), ("/runs", "deadline_before")):
            r = await alice.get(path, params={name: "0.5"})
            assert r.status_code == 422 and name in r.text and "ISO 8601" in r.text, (path, r.text)
        assert (await alice.get("/approvals", params={"created_at_lte": "2026-12-01T00:00:00Z"})).status_code == 200


async def test_the_codec_takes_an_object_of_payloads_only(db, temporal_server):
    """A JSON string, list or number is no {"payloads": [...]}: 422, not an empty answer."""
    from hitl.security import codec

    codec.configure(f"k1:{base64.b64encode(b'k' * 32).decode()}")
    service = RunningService(db)
    try:
        async with service.client(service.token("ui", "payloads:decode")) as http:
            for body in ('"AAA"', "[]", "3", '{"payloads": null}', "{}", '{"payloads": ["AAA"]}'):
                r = await http.post("/codec/decode", content=body, headers={"Content-Type": "application/json"})
                assert r.status_code == 422 and "payloads" in r.text, (body, r.text)
    finally:
        service.stop()
        codec.configure()


@pytest.mark.slow  # waits out the pool's 30 s connection timeout
async def test_postgresql_unreachable_is_503_and_names_no_host_or_user():
    """A database that cannot be reached is DatabaseUnavailableError, answered 503; psycopg's message (host, port,
    user) stays in the log, out of what the caller is told."""
    from hitl import DatabaseUnavailableError
    from hitl.db.postgres import PostgresDb
    from hitl.service.errors import status_of

    db = PostgresDb("postgresql://hitl-user:s3cret@127.0.0.1:1/nowhere?connect_timeout=2", approvals_table="approvals_x")
    try:
        with pytest.raises(DatabaseUnavailableError) as raised:
            await db.aquery("SELECT 1")
        assert status_of(raised.value) == 503
        assert not any(part in str(raised.value) for part in ("hitl-user", "s3cret", "127.0.0.1", "nowhere")), raised.value
    finally:
        await db.aclose()
        db.close()
