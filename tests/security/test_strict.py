"""Strict mode: runs whose workers trust the service's key take only signed decisions, and the trail proves who decided."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hitl import DecisionNotAllowedError, tool
from hitl._core import runs as _runs
from hitl.approval import approval
from hitl.security import signing
from hitl.security.signing import Signer, public_jwks
from tests.conftest import RunningService
from tests.core.test_team import TRADES, make_team  # noqa: F401  (make_team: a fixture)
from tests.service.test_service import RAN, paused, pay, pays
from tests.store.test_audit import settled, sql


@approval(approvers=["group:finance"])
@tool(requires_confirmation=True)
def refund(amount: int) -> str:
    """Refund a customer (finance decides)."""
    RAN.append({"refund": amount})
    return f"refunded {amount}"


@pytest.fixture
def service_key(tmp_path):
    signer = Signer.generate()
    path = tmp_path / "service.pem"
    path.write_bytes(signer.pem())
    return signer, path


@pytest.fixture
def strict(service_key):
    """This process's workers trust the service's key (and only it) for the test."""
    signing.trust([service_key[0]])
    yield service_key[0]
    signing.trust(None)


@pytest.fixture
def signed_service(db, temporal_server, service_key, strict):
    running = RunningService(db, signing_key=str(service_key[1]))
    yield running
    running.stop()


async def events_of(db, approval_id, kind, count=1):
    for _ in range(200):
        found = [e for e in db.get_approval_events(approval_id) if e["kind"] == kind]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{approval_id}: no {kind} event in {db.get_approval_events(approval_id)}")


async def test_unsigned_signal_and_update_are_refused_and_recorded_a_signed_decision_applies(
        make_agent, script, running_worker, db, signed_service, client, strict):
    """A raw `confirm` signal and an unsigned update claiming to be alice change nothing and are kept as
    `refused`; alice's decision through the service is signed, applied once and verifies offline."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), signed_service.client(signed_service.token("alice")) as alice:
        run, approval_id = await paused(agent, db)
        rid = approval_id.split("/", 1)[1]
        RAN.clear()
        await client.get_workflow_handle(run.run_id).signal("confirm", {"requirement_id": rid, "resolved_by": "alice"})
        [refused] = await events_of(db, approval_id, "refused")
        assert refused["payload"]["resolved_by"] == "alice" and "unsigned" in refused["payload"]["reason"]
        run.active_requirements[0].confirm(resolved_by="alice")
        with pytest.raises(DecisionNotAllowedError, match="unsigned"):
            await agent.acontinue_run(run.run_id, run.requirements)
        await events_of(db, approval_id, "refused", 2)
        assert RAN == [] and (await agent.aget_run(run.run_id)).active_requirements
        r = await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
        assert r.status_code == 200 and r.json()["run"]["status"] == "completed", r.text
        assert RAN == [{"amount": 10, "to": "bob"}]
        [confirmed] = await events_of(db, approval_id, "confirmed")
    claims = signing.verify(confirmed["payload"]["signature"], signing.trusted())
    assert claims.sub == "alice" and claims.run_id == run.run_id and claims.requirement_id == rid
    assert db.verify_decisions(public_jwks([strict]), require_signed=True) == []


async def test_a_key_the_worker_does_not_trust_is_refused_and_keys_rotate(make_agent, script, running_worker, db):
    """Signed by an unknown key: refused. Old and new keys trusted side by side both verify; a retired key is refused."""
    old, new, stranger = Signer.generate(), Signer.generate(), Signer.generate()
    signing.trust([old, new])
    try:
        agent = make_agent(pays(script, 1, 2, 3), [pay], db=db, signer=stranger)
        async with running_worker():
            run = await agent.arun("pay")
            run.active_requirements[0].confirm(resolved_by="alice")
            with pytest.raises(DecisionNotAllowedError, match="does not trust"):
                await agent.acontinue_run(run.run_id, run.requirements)
            agent.signer = old  # a trusted internal caller signs with a key of its own
            run = await agent.acontinue_run(run.run_id, run.requirements)
            assert run.is_paused and run.pauses == 2
            agent.signer = new  # rotation: the new key signs while the old one is still trusted
            run.active_requirements[0].confirm(resolved_by="bob")
            run = await agent.acontinue_run(run.run_id, run.requirements)
            signing.trust([new])  # the old key retired
            agent.signer = old
            run.active_requirements[0].confirm(resolved_by="alice")
            with pytest.raises(DecisionNotAllowedError, match="does not trust"):
                await agent.acontinue_run(run.run_id, run.requirements)
            agent.signer = new
            done = await agent.acontinue_run(run.run_id, run.requirements)
            assert done.status.value == "completed"
            await settled(db, run.run_id, 3, "approved")
        assert db.verify_decisions(public_jwks([old, new]), require_signed=True) == []
        assert {p["reason"] for p in db.verify_decisions(public_jwks([new]))} == {
            f"the signature does not hold: signed by key {old.kid!r}, which this worker does not trust"}
    finally:
        signing.trust(None)


async def test_audit_verify_finds_a_tampered_signature(make_agent, script, running_worker, db, signed_service, tmp_path,
                                                      strict):
    """A decision re-signed behind the trigger as someone else is caught by db.verify_decisions and `hitl audit verify`."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), signed_service.client(signed_service.token("alice")) as alice:
        run, approval_id = await paused(agent, db)
        assert (await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})).status_code == 200
        [confirmed] = await events_of(db, approval_id, "confirmed")
    keys = tmp_path / "keys.jwks"
    keys.write_text(json.dumps(public_jwks([strict])))
    env = {"DATABASE_URL": db.db_url, "PATH": "/usr/bin:/bin"}
    verify = [sys.executable, "-m", "hitl.cli", "audit", "verify", "--keys", str(keys), "--approvals-table", db.approvals_table]
    ok = subprocess.run(verify, capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "every decision verifies" in ok.stdout, ok.stdout + ok.stderr
    signature = confirmed["payload"]["signature"]
    forged = signature[:-6] + ("BBBBBB" if signature.endswith("AAAAAA") else "AAAAAA")
    sql(db, "ALTER TABLE {t}_events DISABLE TRIGGER USER")
    sql(db, "UPDATE {t}_events SET payload = jsonb_set(payload, '{signature}', to_jsonb(%s::text)) "
            "WHERE approval_id = %s AND kind = 'confirmed'", forged, approval_id)
    problems = db.verify_decisions(public_jwks([strict]))
    assert {p["kind"] for p in problems} == {"confirmed", "chain"}
    assert "does not verify" in next(p for p in problems if p["kind"] == "confirmed")["reason"]
    bad = subprocess.run([*verify, "--json"], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and json.loads(bad.stdout)[0]["approval_id"] == approval_id, bad.stdout + bad.stderr


async def test_signed_groups_let_an_oidc_principal_decide_a_group_approval(
        make_agent, script, running_worker, db, temporal_server, service_key, strict, tmp_path):
    """carol's OIDC token says she is in finance: the service signs that, and the strict run lets her decide."""
    idp = Ed25519PrivateKey.generate()
    jwks = tmp_path / "idp.jwks"
    jwks.write_text(json.dumps({"keys": [{**json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(idp.public_key())), "kid": "idp-1"}]}))
    from hitl.security.oidc import OidcSettings

    oidc = OidcSettings(jwks=str(jwks), issuer="https://idp.example", audience="hitl")
    service = RunningService(db, signing_key=str(service_key[1]), oidc=oidc)

    def token(**claims):
        base = {"iss": "https://idp.example", "aud": "hitl", "sub": "carol", "groups": ["finance"],
                "scope": "approvals:read approvals:decide", "exp": time.time() + 300}
        return jwt.encode({**base, **claims}, idp, algorithm="EdDSA", headers={"kid": "idp-1"})

    agent = make_agent(script({"turns": [{"tool_calls": [{"name": "refund", "arguments": {"amount": 3}}]},
                                         {"content": "{results}"}]}), [refund], db=db)
    try:
        async with running_worker():
            run, approval_id = await paused(agent, db, "refund")
            for bad, why in ((token(aud="other"), "audience"), (token(exp=time.time() - 600), "expired"),
                             (token(iss="https://evil.example"), "issuer")):
                async with service.client(bad) as c:
                    r = await c.get("/approvals")
                    assert r.status_code == 401 and why in r.json()["detail"].lower(), r.text
            async with service.client(token(groups=["sales"])) as sales:
                r = await sales.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
                assert r.status_code == 403 and "not among the approvers" in r.json()["detail"], r.text
            RAN.clear()
            async with service.client(token()) as carol:
                mine = (await carol.get("/approvals", params={"approver": "me"})).json()
                assert [a["id"] for a in mine["data"]] == [approval_id]
                r = await carol.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
                assert r.status_code == 200 and r.json()["resolved_by"] == "carol", r.text
                assert RAN == [{"refund": 3}]
    finally:
        service.stop()


async def test_strict_changes_are_signed_and_taken_once(make_agent, script, running_worker, db, signed_service, client):
    """A raw change_approval signal is refused and recorded; the service's signed change applies; the same signed
    change sent again is refused."""
    agent = make_agent(pays(script, 10), [pay], db=db)
    async with running_worker(), signed_service.client(signed_service.token("alice")) as alice:
        run, approval_id = await paused(agent, db)
        rid = approval_id.split("/", 1)[1]
        await client.get_workflow_handle(run.run_id).signal(
            "change_approval", {"requirement_id": rid, "approvers": ["mallory"], "changed_by": "alice"})
        [refused] = await events_of(db, approval_id, "refused")
        assert refused["payload"]["action"] == "change_approval" and "unsigned" in refused["payload"]["reason"]
        r = await alice.post(f"/approvals/{approval_id}/change", json={"extend_by_seconds": 60})
        assert r.status_code == 200, r.text
        [changed] = await events_of(db, approval_id, "changed")
        assert changed["payload"]["changed_by"] == "alice" and changed["payload"]["signature"]
        from hitl.decisions import ChangeApproval

        replayed = ChangeApproval(requirement_id=rid, extend_by_seconds=60, changed_by="alice",
                                  signature=changed["payload"]["signature"])
        with pytest.raises(DecisionNotAllowedError, match="taken already"):
            await _runs.change(client, run.run_id, replayed)
        assert (await agent.aget_run(run.run_id)).requirements[0].policy.approvers == ["alice", "bob"]


async def test_a_team_members_approval_is_decided_signed_through_the_team(make_team, running_worker, db, signed_service):
    """The service signs for the team's ids; the team checks it and the member accepts it, under its own id."""
    team, _, trader = make_team(db=db)
    TRADES.clear()
    async with running_worker(), signed_service.client(signed_service.token("alice")) as alice:
        response = await team.arun("Buy 100 shares of AAPL")
        [req] = response.active_requirements
        await settled(db, req.member_run_id, 1)
        r = await alice.post(f"/approvals/{req.id}/resolve", json={"status": "approved"})
        assert r.status_code == 200 and r.json()["run"]["status"] == "completed", r.text
        assert TRADES == [("AAPL", 100)]
        await settled(db, req.member_run_id, 1, "approved")
    assert db.verify_decisions(require_signed=True) == []



def test_a_signed_change_is_refused_again_after_continue_as_new():
    """The nonces of signed changes travel with continue-as-new while their signatures could still be taken."""
    from hitl._wire import digest
    from hitl.decisions import ChangeApproval
    from hitl.run import RunRequirement, ToolExecution
    from hitl.workflows.signatures import Signatures

    signer = Signer.generate()
    signing.trust([signer])
    try:
        req = RunRequirement(id="req-1", kind="confirmation", tool_execution=ToolExecution(
            tool_name="pay", tool_call_id="c1", arguments={"amount": 5}))
        change = signer.signed(ChangeApproval(requirement_id="req-1", extend_by_seconds=60, changed_by="alice"),
                               run_id="run-1", requirement_id="req-1", arguments_digest=digest({"amount": 5}))
        nonce, now = signing.claims_of(change.signature).nonce, time.time()
        Signatures("run-1", None).check_change("here", req, change, now)  # a fresh chain takes it
        carried = Signatures("run-1", None, {nonce: now, "old": now - 3600}).carried(now)
        assert carried == {nonce: now}  # one that could no longer be taken is dropped
        with pytest.raises(DecisionNotAllowedError, match="taken already"):
            Signatures("run-1", None, carried).check_change("here", req, change, now)
    finally:
        signing.trust(None)
