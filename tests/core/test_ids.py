"""Ids that cannot change meaning in a URL: refused at every entrance, never built into a URL by a client.

The attack these close: a run started as ``x/../<victim run>`` showed an approval whose Approve button
(the browser's fetch, or httpx in the CLI, resolves dot segments) decided the victim's payment.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError

from hitl import InvalidInputError, tool
from hitl.approval import approval
from hitl.decisions import Confirm
from tests.conftest import ROOT
from tests.service.test_inbox import card, signed_in
from tests.store.test_audit import settled, sql

RAN: list[dict] = []
UNSAFE = ["x/../run-victim", "..", ".", "a b", "a%2Fb", "run/1", "-run", "ré", "run\n1", "run?x", "run#x"]


@approval(approvers=["alice"])
@tool(requires_confirmation=True)
def pay(amount: int, to: str) -> str:
    """Pay someone."""
    RAN.append({"amount": amount, "to": to})
    return f"paid {amount} to {to}"


def pays(script):
    return script({"turns": [{"tool_calls": [{"name": "pay", "arguments": {"amount": 500, "to": "mallory"}}]},
                             {"content": "done: {results}"}]})


async def test_the_python_api_refuses_run_and_session_ids_a_url_could_reinterpret(make_agent, script, running_worker):
    """Agent.run(run_id=..., session_id=...): anything but letters, digits and . _ : @ - is refused, naming the field."""
    agent = make_agent(pays(script), [pay])
    async with running_worker():
        for bad in UNSAFE:
            with pytest.raises(InvalidInputError, match="run_id"):
                await agent.arun("pay", run_id=bad)
            with pytest.raises(InvalidInputError, match="session_id"):
                await agent.arun("pay", session_id=bad)
        run = await agent.arun("pay", run_id="run-ok.1:a@b_c-d", session_id="s.1")
        assert run.is_paused


async def test_decisions_naming_an_unsafe_requirement_id_are_refused_by_the_python_api_and_by_the_run(
        make_agent, script, running_worker, client):
    """continue_run/decide from Python refuse it; a raw update is refused by its validator (nothing in history);
    a raw signal changes nothing."""
    from hitl._core import continuing
    from hitl._core import runs as _runs

    agent = make_agent(pays(script), [pay])
    async with running_worker():
        run = await agent.arun("pay")
        rid = run.requirements[0].id
        for bad in ("x/../" + rid, "../" + rid, f"a/b/{rid}", rid + " "):
            with pytest.raises(InvalidInputError, match="requirement_id"):
                await _runs.decide(client, run.run_id, Confirm(requirement_id=bad, resolved_by="alice"))
            with pytest.raises(InvalidInputError, match="requirement_id"):
                await continuing.continue_with(client, run.run_id, [Confirm(requirement_id=bad, resolved_by="alice")])
        handle = client.get_workflow_handle(run.run_id)
        before = len([e async for e in handle.fetch_history_events()])
        for name, body in (("decide", {"action": "confirm", "requirement_id": f"x/../{rid}", "resolved_by": "alice"}),
                           ("continue_run", {"decisions": [{"action": "confirm", "requirement_id": f"x/../{rid}",
                                                            "resolved_by": "alice"}]}),
                           ("change_approval", {"requirement_id": f"x/../{rid}", "changed_by": "alice"})):
            with pytest.raises(WorkflowUpdateFailedError) as failed:
                await handle.execute_update(name, body)
            assert "requirement_id" in str(failed.value.cause), failed.value.cause
        await handle.signal("confirm", {"requirement_id": f"x/../{rid}", "resolved_by": "alice"})
        assert (await agent.aget_run(run.run_id)).is_paused and RAN == []
        after = [e async for e in handle.fetch_history_events()]
        # The signal is in history (Temporal records every signal, and its refusal's verdict); no update, no
        # decision and no audit write are.
        kinds = {EventType.Name(e.event_type) for e in after[before:]}
        assert not {k for k in kinds if "UPDATE" in k or "ACTIVITY" in k}, kinds


async def test_the_service_refuses_unsafe_ids_in_paths_and_bodies(make_agent, script, running_worker, db, service):
    """POST /runs with a run or session id a URL could change, a path whose id decodes to another shape, a
    continue naming one: 422 with the field named; nothing starts and nothing is decided."""
    agent = make_agent(pays(script), [pay], db=db)
    alice = service.client(service.token("alice", "approvals:read", "approvals:decide", "runs:start", "runs:read"))
    async with running_worker(), alice:
        run = (await alice.post("/runs", json={"agent": agent.name, "message": "pay"})).json()
        rid = run["requirements"][0]["id"]
        await settled(db, run["run_id"], 1)
        for bad in ("x/../" + run["run_id"], "..", "a b", "run%2F1"):
            r = await alice.post("/runs", json={"agent": agent.name, "message": "pay", "run_id": bad})
            assert r.status_code == 422 and "run_id" in r.text, r.text
            r = await alice.post("/runs", json={"agent": agent.name, "message": "pay", "session_id": bad})
            assert r.status_code == 422 and "session_id" in r.text, r.text
        # Encoded slashes and dots reach the service decoded: three segments, or a dot segment, are no approval id.
        for path in (f"/approvals/x%2F..%2F{run['run_id']}/{rid}", f"/approvals/..%2F{run['run_id']}/{rid}",
                     f"/approvals/{run['run_id']}%2Fx/{rid}"):
            for method, suffix, body in (("GET", "", None), ("POST", "/resolve", {"status": "approved"})):
                r = await alice.request(method, path + suffix, json=body)
                assert r.status_code == 422 and "approval id" in r.text, (path, r.status_code, r.text)
        assert (await alice.get(f"/runs/..%2F{run['run_id']}")).status_code == 404  # a slash: no route takes it
        for bad in ("a%20b", "-run", "r%C3%A9"):
            r = await alice.get(f"/runs/{bad}")
            assert r.status_code == 422 and "run_id" in r.text, r.text
        r = await alice.post(f"/runs/{run['run_id']}/continue",
                             json={"decisions": [{"action": "confirm", "requirement_id": f"x/../{rid}"}]})
        assert r.status_code == 422 and "requirement_id" in r.text, r.text
        assert (await agent.aget_run(run["run_id"])).is_paused and RAN == []
        assert db.get_approval(f"{run['run_id']}/{rid}")["status"] == "pending"


async def legacy_and_victim(agent, db):
    """A victim's paused payment, and an approval recorded before ids were checked whose id dot-segments onto it."""
    victim = await agent.arun("pay")
    [(victim_id, _)] = await settled(db, victim.run_id, 1)
    legacy_id = f"x/../{victim_id}"
    columns = [r[0] for r in sql(db, "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                                     " AND column_name NOT IN ('id', 'run_id', 'tool_name')", db.approvals_table)]
    listed = ", ".join(columns)
    sql(db, f"INSERT INTO {{t}} (id, run_id, {listed}) SELECT %s, %s, {listed} FROM {{t}} WHERE id = %s",
        legacy_id, f"x/../{victim.run_id}", victim_id)
    return victim, victim_id, legacy_id


async def test_the_cli_never_sends_an_approval_id_a_url_could_reinterpret(make_agent, script, running_worker, db, service):
    """`hitl approvals approve 'x/../<victim>/req-...'` is a usage error and sends nothing: the victim stays pending."""
    agent = make_agent(pays(script), [pay], db=db)
    token = service.token("alice", "approvals:read", "approvals:decide")
    async with running_worker():
        victim, victim_id, legacy_id = await legacy_and_victim(agent, db)
        env = {"PATH": "/usr/bin:/bin", "HITL_URL": service.url, "HITL_TOKEN": token}
        for command in (["approve", legacy_id], ["show", legacy_id], ["approve", "a/b/c"]):
            done = subprocess.run([sys.executable, "-m", "hitl.cli", "approvals", *command], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 2, (command, done.stdout, done.stderr)
            assert "<run_id>/<requirement_id>" in done.stderr, done.stderr
        runs = subprocess.run([sys.executable, "-m", "hitl.cli", "runs", "show", f"x/../{victim.run_id}"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=60)
        assert runs.returncode == 2 and "run id" in runs.stderr, runs.stderr
        assert (await agent.aget_run(victim.run_id)).is_paused and RAN == []
        assert db.get_approval(victim_id)["status"] == "pending"
        # A safe id still works from the CLI.
        done = subprocess.run([sys.executable, "-m", "hitl.cli", "approvals", "show", victim_id, "--json"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and json.loads(done.stdout)["id"] == victim_id, done.stderr


async def test_the_inbox_shows_an_unsafe_approval_id_but_never_links_or_decides_it(
        browser, make_agent, script, running_worker, db, service):  # noqa: F811
    """In a real Chromium: the legacy approval's card has no link and no Approve; the victim's card works as
    ever; the page's own URL builder refuses dot segments and keeps a team member's dotted run id."""
    agent = make_agent(pays(script), [pay], db=db)
    async with running_worker():
        victim, victim_id, legacy_id = await legacy_and_victim(agent, db)
        page = await signed_in(browser, service, "alice", "approvals:read", "approvals:decide")
        legacy = card(page, legacy_id)
        await legacy.wait_for()
        assert await legacy.get_by_role("button", name="Approve").count() == 0
        assert await legacy.get_by_role("link").count() == 0
        assert "cannot" in (await legacy.inner_text()) or "neither linked nor decided" in (await legacy.inner_text())
        assert await card(page, victim_id).get_by_role("button", name="Approve").count() == 1
        built = await page.evaluate("""async (ids) => {
            const api = await import('/inbox/static/api.js');
            return ids.map((id) => { try { return api.approvalPath(id); } catch (e) { return 'refused: ' + e.message; } });
        }""", [legacy_id, "run-1.Trader.1-call_0_1/req-1-call_0_0", "../x", "a/.."])
        assert built[0].startswith("refused") and built[2].startswith("refused") and built[3].startswith("refused")
        assert built[1] == "/approvals/run-1.Trader.1-call_0_1/req-1-call_0_0"
        await page.context.close()
        assert (await agent.aget_run(victim.run_id)).is_paused and RAN == []
