"""Reserved names (group:, system:, policy:) are no one's: no credential, mapping or link may prove one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hitl.errors import ConfigurationError, InvalidInputError
from hitl.identity import Principal, check_principal_name
from hitl.notify import Notification
from hitl.security import links
from hitl.security.links import LinkSettings
from hitl.security.oidc import OidcSettings
from hitl.security.tokens import TokenStore
from tests.conftest import ROOT, RunningService
from tests.security.test_links import SECRET, link_service, mint, pending_untouched, refund  # noqa: F401 - link_service: a fixture
from tests.service.test_service import RAN, paused
from tests.store.test_audit import sql

RESERVED = ["group:finance", "system:timeout", "policy:audit", "System:Timeout", "GROUP:finance"]


def refunds(script: Any) -> str:
    """A model that asks to refund once (approvers: alice and group:finance), then answers."""
    return script({"turns": [{"tool_calls": [{"name": "refund", "arguments": {"amount": 3}}]}, {"content": "{results}"}]})


def hitl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hitl.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, cwd=ROOT)


@pytest.mark.parametrize("name", RESERVED)
def test_no_token_is_made_for_a_reserved_name(db, name):
    """TokenStore.create refuses group:, system: and policy: names, whatever their case, and says why."""
    with pytest.raises(InvalidInputError, match="token principal .* is reserved"):
        TokenStore(db).create(name, ["approvals:decide"])
    assert sql(db, "SELECT principal FROM {t}_tokens WHERE lower(principal) = lower(%s)", name) == []


def test_hitl_tokens_create_refuses_a_reserved_name(db):
    """`hitl tokens create group:finance` exits 1 saying the name is reserved, and makes no token."""
    table = ["--approvals-table", db.approvals_table]
    env = {"DATABASE_URL": db.db_url}
    for name in ("group:finance", "system:timeout"):
        out = hitl("tokens", "create", name, "-s", "approvals:decide", *table, env=env)
        assert out.returncode == 1 and "is reserved" in out.stderr and name in out.stderr, out.stdout + out.stderr
    listed = json.loads(hitl("tokens", "list", "--all", "--json", *table, env=env).stdout)
    assert not [t for t in listed if t["principal"] in ("group:finance", "system:timeout")]
    ok = hitl("tokens", "create", "finance-bot", "-s", "approvals:read", "--json", *table, env=env)
    assert ok.returncode == 0 and json.loads(ok.stdout)["principal"] == "finance-bot", ok.stderr


async def test_a_token_stored_for_a_reserved_name_proves_nothing(make_agent, script, running_worker, db, service):
    """A token made before the rule, for group:finance, is refused (401, saying why) and cannot decide the group's approval."""
    agent = make_agent(refunds(script), [refund], db=db)
    async with running_worker():
        run, approval_id = await paused(agent, db, "refund")
        RAN.clear()  # other modules' tools leave their calls here
        info, secret = service.tokens.create("finance-bot", ["approvals:read", "approvals:decide"])
        sql(db, "UPDATE {t}_tokens SET principal = 'group:finance' WHERE id = %s", info.id)
        async with service.client(secret) as http:
            r = await http.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
            assert r.status_code == 401 and "reserved" in r.json()["detail"], r.text
            assert (await http.get("/approvals")).status_code == 401
        await pending_untouched(agent, db, run.run_id, approval_id)


async def test_an_oidc_subject_with_a_reserved_name_proves_nothing(make_agent, script, running_worker, db, temporal_server,
                                                                   tmp_path):
    """A JWT whose sub is group:finance or system:timeout gets 401 and decides nothing; carol's still works."""
    idp = Ed25519PrivateKey.generate()
    jwks = tmp_path / "idp.jwks"
    jwks.write_text(json.dumps({"keys": [{**json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(idp.public_key())), "kid": "i1"}]}))
    service = RunningService(db, oidc=OidcSettings(jwks=str(jwks), issuer="https://idp.example", audience="hitl"))

    def token(sub: str) -> str:
        claims = {"iss": "https://idp.example", "aud": "hitl", "sub": sub, "scope": "approvals:read approvals:decide",
                  "exp": time.time() + 300}
        return jwt.encode(claims, idp, algorithm="EdDSA", headers={"kid": "i1"})

    agent = make_agent(refunds(script), [refund], db=db)
    try:
        async with running_worker():
            run, approval_id = await paused(agent, db, "refund")
            RAN.clear()  # other modules' tools leave their calls here
            for sub in ("group:finance", "system:timeout", "Policy:audit"):
                async with service.client(token(sub)) as http:
                    r = await http.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
                    assert r.status_code == 401 and "'sub' claim" in r.json()["detail"] \
                        and "reserved" in r.json()["detail"], r.text
            await pending_untouched(agent, db, run.run_id, approval_id)
            async with service.client(token("carol")) as carol:
                assert (await carol.get("/approvals")).status_code == 200
    finally:
        service.stop()


def test_a_slack_mapping_to_a_reserved_name_stops_the_service_at_start(db, temporal_server):
    """HITL_SLACK_USERS mapping a Slack user to system:timeout: a ConfigurationError naming the entry."""
    with pytest.raises(ConfigurationError, match="HITL_SLACK_USERS: U0FIN maps to 'group:finance' is reserved"):
        RunningService(db, slack_signing_secret="s" * 32, slack_users={"U0ALICE": "alice", "U0FIN": "group:finance"})


def test_hitl_serve_refuses_a_reserved_slack_mapping(db):
    """`hitl serve` with HITL_SLACK_USERS=...,U0T=system:timeout exits 1 at once, naming the entry."""
    out = hitl("serve", "--port", "0", env={"DATABASE_URL": db.db_url, "HITL_SLACK_SIGNING_SECRET": "s" * 32,
                                            "HITL_SLACK_USERS": "U0ALICE=alice,U0T=system:timeout"})
    assert out.returncode == 1 and "HITL_SLACK_USERS: U0T maps to 'system:timeout'" in out.stderr, out.stdout + out.stderr


def test_workers_mint_no_link_for_a_reserved_approver():
    """Of alice, group:finance, system:timeout and policy:audit, only alice gets links."""
    notification = Notification(kind="requested", run_id="run-1", agent_name="a", requirement_id="req-1",
                                tool_name="refund", arguments={"amount": 3}, at=time.time(),
                                approvers=["alice", "group:finance", "system:timeout", "policy:audit", "System:x"])
    made = links.links_for(notification, LinkSettings(secret=SECRET, public_url="https://hitl.example"))
    assert sorted((link.approver, link.decision) for link in made) == [("alice", "approved"), ("alice", "rejected")]


async def test_the_service_refuses_a_link_whose_approver_is_reserved(make_agent, script, running_worker, db, link_service):
    """A validly signed link for group:finance or system:timeout: 403 on GET and POST, nothing decided, the link unspent."""
    agent = make_agent(refunds(script), [refund], db=db)
    async with running_worker(), link_service.client() as http:
        run, approval_id = await paused(agent, db, "refund")
        RAN.clear()  # other modules' tools leave their calls here
        for approver in ("group:finance", "system:timeout"):
            url = mint(db.get_approval(approval_id), approver)
            for method in (http.get, http.post):
                r = await method(url)
                assert r.status_code == 403 and "reserved name" in r.text, r.text
            assert not await links.used(db, links.verify_token(SECRET, url.removeprefix("/links/")).link_id)
        await pending_untouched(agent, db, run.run_id, approval_id)


async def test_a_change_may_not_name_system_or_policy_approvers(make_agent, script, running_worker, db, service):
    """POST /change with system:timeout or policy:audit among the approvers: 422 naming approvers; group:NAME is fine."""
    agent = make_agent(refunds(script), [refund], db=db)
    async with running_worker(), service.client(service.token("alice")) as alice:
        run, approval_id = await paused(agent, db, "refund")
        RAN.clear()  # other modules' tools leave their calls here
        for bad in (["system:timeout"], ["dana", "policy:audit"], ["SYSTEM:timeout"]):
            r = await alice.post(f"/approvals/{approval_id}/change", json={"approvers": bad})
            assert r.status_code == 422 and "approvers" in r.text and "is reserved" in r.text, r.text
        assert [e["kind"] for e in db.get_approval_events(approval_id)] == ["requested"]
        r = await alice.post(f"/approvals/{approval_id}/change", json={"approvers": ["alice", "group:ops"]})
        assert r.status_code == 200 and r.json()["requirements"][0]["policy"]["approvers"] == ["alice", "group:ops"], r.text


def test_a_principal_never_offers_a_reserved_name_as_its_own():
    """approver_names: its groups, but not its own name when that is reserved (defence in depth)."""
    assert Principal(name="group:finance", groups=frozenset({"ops"})).approver_names() == ["group:ops"]
    assert Principal(name="system:timeout").approver_names() == []
    assert Principal(name="carol", groups=frozenset({"finance"})).approver_names() == ["carol", "group:finance"]


def test_ordinary_names_pass():
    """Names that merely contain a colon, or a reserved word elsewhere, are anyone's."""
    for name in ("alice", "svc:payments", "groupie:x", "my-group:finance", "system", "ops@example.com"):
        assert check_principal_name(name, "principal") == name
