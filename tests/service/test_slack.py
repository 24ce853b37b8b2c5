"""The Slack-style interactive receiver: signed requests over HTTP, users mapped by the allowlist, against the real stack."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from hitl.security import signing
from hitl.security.signing import Signer
from hitl.service.slack import signature
from tests.conftest import RunningService
from tests.security.test_links import decided_first_by_alice
from tests.service.test_service import RAN, paused, pay, pays
from tests.store.test_audit import settled, sql

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def slack_service(db: Any, temporal_server: dict[str, Any]) -> Iterator[RunningService]:
    """The service with a Slack signing secret; U0ALICE decides as alice, U0MAL as mallory (no approver)."""
    running = RunningService(db, slack_signing_secret=SLACK_SECRET, slack_users={"U0ALICE": "alice", "U0MAL": "mallory"})
    yield running
    running.stop()


def interaction(approval_id: str, user: str, action_id: str = "approve", *, secret: str = SLACK_SECRET,
                at: float | None = None) -> tuple[bytes, dict[str, str]]:
    """A block_actions request as Slack sends it: form-encoded payload, signed."""
    payload = {"type": "block_actions", "user": {"id": user, "username": user.lower()}, "team": {"id": "T0"},
               "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": approval_id}]}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(time.time() if at is None else at))
    return body, {"content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": timestamp,
                  "x-slack-signature": signature(secret, timestamp, body)}


def resolved_by(db: Any, approval_id: str) -> list[tuple]:
    return sql(db, "SELECT status, resolved_by FROM {t} WHERE id = %s", approval_id)


async def untouched(agent: Any, db: Any, run_id: str, approval_id: str) -> None:
    """Nothing decided: pending, the run paused, the tool not run; then the control that makes it a check: alice's
    confirmation, sent after, is the approval's first and only decision and runs the tool once."""
    assert resolved_by(db, approval_id) == [("pending", None)]
    assert (await agent.aget_run(run_id)).is_paused and RAN == []
    await decided_first_by_alice(agent, db, run_id, approval_id)
    assert RAN == [{"amount": 10, "to": "bob"}]


async def test_a_signed_action_decides_as_the_mapped_principal(make_agent, script, running_worker, db, slack_service):
    """U0ALICE presses approve: decided as alice (resolved_by in the audit table), the tool runs, the answer says so."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), slack_service.client() as http:
        run, approval_id = await paused(agent, db)
        RAN.clear()
        body, headers = interaction(approval_id, "U0ALICE")
        r = await http.post("/slack/interactions", content=body, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["response_type"] == "ephemeral" and f"Approved {approval_id} as alice" in r.json()["text"]
        await settled(db, run.run_id, 1, "approved")
        for _ in range(100):
            if RAN:
                break
            await asyncio.sleep(0.05)
    assert resolved_by(db, approval_id) == [("approved", "alice")] and RAN == [{"amount": 10, "to": "bob"}]


async def test_a_user_outside_the_allowlist_is_refused_with_403(make_agent, script, running_worker, db, slack_service):
    """A Slack user HITL_SLACK_USERS does not name: 403, nothing decided."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), slack_service.client() as http:
        run, approval_id = await paused(agent, db)
        RAN.clear()
        body, headers = interaction(approval_id, "U0STRANGER")
        r = await http.post("/slack/interactions", content=body, headers=headers)
        assert r.status_code == 403 and "U0STRANGER" in r.json()["text"], r.text
        await untouched(agent, db, run.run_id, approval_id)


async def test_a_mapped_user_who_is_not_an_approver_is_told_it_is_not_theirs(make_agent, script, running_worker, db,
                                                                              slack_service):
    """U0MAL maps to mallory, no approver of pay: an ephemeral 200 saying it is unknown or not hers; nothing decided."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), slack_service.client() as http:
        run, approval_id = await paused(agent, db)
        RAN.clear()
        body, headers = interaction(approval_id, "U0MAL")
        r = await http.post("/slack/interactions", content=body, headers=headers)
        assert r.status_code == 200 and r.json()["response_type"] == "ephemeral", r.text
        assert r.json()["text"] == f"Not decided: approval {approval_id!r} is unknown, or not one mallory may decide."
        # Refused before the run was asked: not even a `refused` attempt on the trail (nor, after the control
        # in untouched, between the request and alice's decision).
        assert [e["kind"] for e in db.get_approval_events(approval_id)] == ["requested"]
        await untouched(agent, db, run.run_id, approval_id)


async def test_an_unknown_approval_gets_the_same_answer_as_one_not_yours(db, slack_service):
    """An allowlisted user pressing a button with a made-up approval id learns nothing more than for another's."""
    body, headers = interaction("run-nope/req-1", "U0MAL")
    async with slack_service.client() as http:
        r = await http.post("/slack/interactions", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "Not decided: approval 'run-nope/req-1' is unknown, or not one mallory may decide."


async def test_a_bad_signature_is_refused_with_401(make_agent, script, running_worker, db, slack_service):
    """Signed with another secret, or the body changed after signing: 401, nothing decided."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), slack_service.client() as http:
        run, approval_id = await paused(agent, db)
        RAN.clear()
        body, headers = interaction(approval_id, "U0ALICE", secret="not-the-secret")
        assert (await http.post("/slack/interactions", content=body, headers=headers)).status_code == 401
        body, headers = interaction(approval_id, "U0ALICE")
        tampered = body.replace(b"approve", b"reject")
        r = await http.post("/slack/interactions", content=tampered, headers=headers)
        assert r.status_code == 401 and "signature" in r.json()["text"], r.text
        await untouched(agent, db, run.run_id, approval_id)


async def test_an_old_timestamp_is_refused_with_401(make_agent, script, running_worker, db, slack_service):
    """A correctly signed request from six minutes ago (a replay): 401, nothing decided."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), slack_service.client() as http:
        run, approval_id = await paused(agent, db)
        RAN.clear()
        body, headers = interaction(approval_id, "U0ALICE", at=time.time() - 360)
        r = await http.post("/slack/interactions", content=body, headers=headers)
        assert r.status_code == 401 and "timestamp" in r.json()["text"], r.text
        await untouched(agent, db, run.run_id, approval_id)


async def test_a_second_action_is_told_who_decided_first(make_agent, script, running_worker, db, slack_service):
    """bob approves over the API first; alice's Slack reject then answers that it was already decided by bob."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    bob = slack_service.client(slack_service.token("bob"))
    async with running_worker(), slack_service.client() as http, bob:
        run, approval_id = await paused(agent, db)
        assert (await bob.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})).status_code == 200
        await settled(db, run.run_id, 1, "approved")
        body, headers = interaction(approval_id, "U0ALICE", "reject")
        r = await http.post("/slack/interactions", content=body, headers=headers)
        assert r.status_code == 200 and "already decided" in r.json()["text"] and "by bob" in r.json()["text"], r.text
    assert resolved_by(db, approval_id) == [("approved", "bob")]


async def test_without_a_signing_secret_the_receiver_answers_503(db, service):
    """A service with no HITL_SLACK_SIGNING_SECRET refuses every interaction, saying why."""
    body, headers = interaction("run-x/req-1", "U0ALICE")
    async with service.client() as http:
        r = await http.post("/slack/interactions", content=body, headers=headers)
    assert r.status_code == 503 and "HITL_SLACK_SIGNING_SECRET" in r.json()["text"]


async def test_a_slack_decision_is_signed_for_strict_workers(make_agent, script, running_worker, db, temporal_server, tmp_path):
    """Workers that take only signed decisions: U0ALICE's approval, signed by the service's key, is applied as alice."""
    signer = Signer.generate()
    (tmp_path / "service.pem").write_bytes(signer.pem())
    signing.trust([signer])
    running = RunningService(db, slack_signing_secret=SLACK_SECRET, slack_users={"U0ALICE": "alice"},
                             signing_key=str(tmp_path / "service.pem"))
    try:
        agent = make_agent(pays(script, 10), [pay], db=db)
        async with running_worker(), running.client() as http:
            run, approval_id = await paused(agent, db)
            body, headers = interaction(approval_id, "U0ALICE")
            r = await http.post("/slack/interactions", content=body, headers=headers)
            assert r.status_code == 200 and "as alice" in r.json()["text"], r.text
            await settled(db, run.run_id, 1, "approved")
    finally:
        signing.trust(None)
        running.stop()
    assert resolved_by(db, approval_id) == [("approved", "alice")]
