"""`hitl approvals ...` and `hitl runs ...` as real processes against the real stack: the decision
service on a port, a worker, Temporal's dev server and PostgreSQL; `--temporal` straight to them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import timedelta

import pytest

from hitl import tool
from hitl.approval import approval
from hitl.dev import stack as devstack
from hitl.security import signing
from hitl.security.signing import Signer
from tests.conftest import ROOT
from tests.store.test_audit import settled

RAN: list[dict] = []


@approval(approvers=["alice", "bob"], timeout=timedelta(hours=1))
@tool(requires_confirmation=True)
def pay(amount: int, to: str) -> str:
    """Pay someone."""
    RAN.append({"amount": amount, "to": to})
    return f"paid {amount} to {to}"


@tool(requires_user_input=True, user_input_fields=["time"])
def book(date: str, time: str) -> str:
    """Book a slot."""
    return f"booked {date} {time}"


@tool(external_execution=True)
def ship(order: str) -> str:
    """Ship an order (done by the warehouse's own system)."""
    raise AssertionError("executed elsewhere")


def one_call(script, name: str, arguments: dict) -> str:
    return script({"turns": [{"tool_calls": [{"name": name, "arguments": arguments}]}, {"content": "done: {results}"}]})


async def paused(agent, db, message: str = "go") -> tuple[str, str]:
    """A run paused on one approval, mirrored into PostgreSQL: (run id, approval id)."""
    run = await agent.arun(message)
    assert run.is_paused, run
    [(approval_id, _)] = await settled(db, run.run_id, 1)
    return run.run_id, approval_id


class Cli:
    """The `hitl` console script as a subprocess, with a service URL and a token in its environment.
    Every call checks that no token it was given shows up in what it printed."""

    def __init__(self, url: str, *tokens: str) -> None:
        self.url, self.tokens = url, tokens

    async def __call__(self, *args: str, token: str | None = None, code: int = 0,
                       env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HITL_URL": self.url, "COLUMNS": "250", **(env or {})}  # wide: the table's ids are not cut
        env.pop("HITL_TOKEN", None)
        if token:
            env["HITL_TOKEN"] = token
        out = await asyncio.to_thread(subprocess.run, [devstack.binary("hitl"), *args], capture_output=True, text=True,
                                      timeout=120, env=env, cwd=ROOT)
        assert out.returncode == code, f"exit {out.returncode}, not {code}: {out.stdout}{out.stderr}"
        for secret in (*self.tokens, token or ""):
            assert not secret or (secret not in out.stdout and secret not in out.stderr)
        return out

    async def json(self, *args: str, token: str | None = None, env: dict[str, str] | None = None) -> object:
        return json.loads((await self(*args, "--json", token=token, env=env)).stdout)


async def test_list_and_show_as_tables_and_as_json(make_agent, script, running_worker, db, service):
    """`approvals list` and `show` print tables for people and the service's JSON with --json; --mine filters."""
    agent = make_agent(one_call(script, "pay", {"amount": 10, "to": "bob"}), [pay], db=db)
    alice, carol = service.token("alice"), service.token("carol", "approvals:read", "approvals:decide")
    hitl = Cli(service.url, alice, carol)
    async with running_worker():
        run_id, approval_id = await paused(agent, db)
        table = (await hitl("approvals", "list", token=alice)).stdout
        assert approval_id in table and "pay" in table and "alice, bob" in table and "pending" in table and "in 59m" in table
        page = await hitl.json("approvals", "list", "--run", run_id, token=alice)
        assert [a["id"] for a in page["data"]] == [approval_id] and page["meta"]["total_count"] == 1
        assert (await hitl.json("approvals", "list", "--mine", "--run", run_id, token=carol))["data"] == []
        assert (await hitl.json("approvals", "list", "--status", "approved", "--run", run_id, token=alice))["data"] == []
        detail = await hitl.json("approvals", "show", approval_id, token=alice)
        assert detail["policy"]["approvers"] == ["alice", "bob"] and detail["run_status"] == "paused"
        assert detail["context"]["arguments"] == {"amount": 10, "to": "bob"}
        assert [e["kind"] for e in detail["events"]] == ["requested"]
        shown = (await hitl("approvals", "show", approval_id, token=alice)).stdout
        assert "history" in shown and "requested" in shown and '"amount": 10' in shown and f"{run_id} (paused)" in shown


async def test_approve_with_corrected_arguments_completes_the_run(make_agent, script, running_worker, db, service):
    """`approvals approve --args` runs the tool with the corrected arguments; --json is the service's ResolveResult."""
    agent = make_agent(one_call(script, "pay", {"amount": 10, "to": "bob"}), [pay], db=db)
    alice = service.token("alice")
    hitl = Cli(service.url, alice)
    async with running_worker():
        run_id, approval_id = await paused(agent, db)
        RAN.clear()
        result = await hitl.json("approvals", "approve", approval_id, "--args", '{"amount": 5, "to": "bob"}', "--reason", "ok",
                                 token=alice)
        assert result["resolved_by"] == "alice" and result["decision"] == "confirm" and result["run_id"] == run_id
        assert result["run"]["status"] == "completed" and result["run"]["content"] == "done: paid 5 to bob"
        assert RAN == [{"amount": 5, "to": "bob"}]
    assert db.get_approval(approval_id)["resolved_by"] == "alice"


async def test_reject_prints_the_run_and_its_reason_reaches_the_audit_trail(make_agent, script, running_worker, db, service):
    """`approvals reject --reason` prints the decision and the run after it; the reason is on the approval's history."""
    agent = make_agent(one_call(script, "pay", {"amount": 10, "to": "bob"}), [pay], db=db)
    bob = service.token("bob")
    hitl = Cli(service.url, bob)
    async with running_worker():
        run_id, approval_id = await paused(agent, db)
        printed = (await hitl("approvals", "reject", approval_id, "--reason", "not this month", token=bob)).stdout
        assert f"reject {approval_id} as bob" in printed and f"{run_id}" in printed and "completed" in printed
        await settled(db, run_id, 1, "rejected")
    [rejected] = [e for e in db.get_approval_events(approval_id) if e["kind"] == "rejected"]
    record = db.get_approval(approval_id)
    assert record["resolution"]["reason"] == "not this month" and rejected["payload"]["resolved_by"] == "bob", record


async def test_input_fills_a_user_input_approval(make_agent, script, running_worker, db, service):
    """`approvals input ID time=10:00` gives the fields a person fills; the run completes with them."""
    agent = make_agent(one_call(script, "book", {"date": "2026-12-03"}), [book], db=db)
    dana = service.token("dana")
    hitl = Cli(service.url, dana)
    async with running_worker():
        _, approval_id = await paused(agent, db)
        await hitl("approvals", "input", approval_id, token=dana, code=2)  # no fields: a usage error
        result = await hitl.json("approvals", "input", approval_id, "time=10:00", token=dana)
        assert result["decision"] == "provide_input" and result["run"]["content"] == "done: booked 2026-12-03 10:00"


async def test_result_gives_an_external_execution_its_result(make_agent, script, running_worker, db, service):
    """`approvals result ID --value JSON` hands the tool's result to the run, which completes with it."""
    agent = make_agent(one_call(script, "ship", {"order": "o-7"}), [ship], db=db)
    dana = service.token("dana")
    hitl = Cli(service.url, dana)
    async with running_worker():
        _, approval_id = await paused(agent, db)
        result = await hitl.json("approvals", "result", approval_id, "--value", '{"tracking": "T-1"}', token=dana)
        assert result["decision"] == "provide_result" and "T-1" in result["run"]["content"]


async def test_refused_is_exit_3(make_agent, script, running_worker, db, service):
    """No token, or a token whose principal the approval's policy does not name: exit 3, the run still paused."""
    agent = make_agent(one_call(script, "pay", {"amount": 10, "to": "bob"}), [pay], db=db)
    carol = service.token("carol", "approvals:read", "approvals:decide")
    hitl = Cli(service.url, carol)
    async with running_worker():
        run_id, approval_id = await paused(agent, db)
        missing = await hitl("approvals", "list", code=3)
        assert "[401]" in missing.stderr and "HITL_TOKEN" in missing.stderr and missing.stdout == ""
        refused = await hitl("approvals", "approve", approval_id, "--json", token=carol, code=3)
        assert "[403]" in refused.stderr and "carol" in refused.stderr and refused.stdout == ""
        assert (await agent.aget_run(run_id)).is_paused


async def test_a_token_with_a_line_break_is_stripped_or_refused_and_never_printed(service):
    """A token read from a file (trailing CRLF) works; one with a break inside is a usage error (2) that does not show it."""
    alice = service.token("alice", "approvals:read", "approvals:decide")
    hitl = Cli(service.url, alice)
    page = await hitl.json("approvals", "list", token=alice + "\r\n")
    assert page["meta"]["total_count"] == 0
    broken = alice[:12] + "\r\n" + alice[12:]
    out = await hitl("approvals", "list", token=broken, code=2)
    assert "characters no token has" in out.stderr and alice[12:] not in out.stderr and alice[:12] not in out.stderr


async def test_unknown_approval_or_run_is_exit_4(service):
    """An approval or a run that does not exist: exit 4."""
    alice = service.token("alice", "approvals:read", "approvals:decide", "runs:read")
    hitl = Cli(service.url, alice)
    assert "no approval" in (await hitl("approvals", "show", "run-nope/req-1", token=alice, code=4)).stderr
    await hitl("approvals", "approve", "run-nope/req-1", token=alice, code=4)
    assert "run-nope" in (await hitl("runs", "show", "run-nope", token=alice, code=4)).stderr


async def test_deciding_twice_is_exit_5_naming_who_decided(make_agent, script, running_worker, db, service):
    """The second decision on an approval: exit 5, "already decided by alice at <time>"."""
    agent = make_agent(one_call(script, "pay", {"amount": 10, "to": "bob"}), [pay], db=db)
    alice, bob = service.token("alice"), service.token("bob")
    hitl = Cli(service.url, alice, bob)
    async with running_worker():
        _, approval_id = await paused(agent, db)
        await hitl("approvals", "approve", approval_id, token=alice)
        late = await hitl("approvals", "reject", approval_id, "--reason", "no", token=bob, code=5)
        assert "already decided by alice at 20" in late.stderr and "[409]" in late.stderr


async def test_a_decision_that_does_not_fit_is_exit_6(make_agent, script, running_worker, db, service):
    """Arguments that fail the tool's schema, or user input on a confirmation: exit 6; the run still waits."""
    agent = make_agent(one_call(script, "pay", {"amount": 10, "to": "bob"}), [pay], db=db)
    alice = service.token("alice")
    hitl = Cli(service.url, alice)
    async with running_worker():
        run_id, approval_id = await paused(agent, db)
        bad = await hitl("approvals", "approve", approval_id, "--args", '{"amount": "lots", "to": "bob"}', token=alice, code=6)
        assert "amount" in bad.stderr
        assert "user_input" in (await hitl("approvals", "input", approval_id, "time=1", token=alice, code=6)).stderr
        assert (await agent.aget_run(run_id)).is_paused


async def test_unreachable_service_is_exit_7_and_misused_flags_exit_2():
    """Nothing listening at --url: exit 7 saying where; --as without --temporal: a usage error."""
    hitl = Cli(f"http://127.0.0.1:{devstack.free_port()}", "hitl_secret_never_shown")
    down = await hitl("approvals", "list", "--token", "hitl_secret_never_shown", code=7)
    assert "could not be reached" in down.stderr and "--temporal" in down.stderr
    await hitl("approvals", "approve", "run-x/req-1", "--as", "alice", code=2)


async def test_runs_list_show_and_cancel_over_the_service(make_agent, script, running_worker, db, service):
    """`hitl runs list|show|cancel` through the service: listed, read, cancelled as the token's principal."""
    agent = make_agent(one_call(script, "pay", {"amount": 10, "to": "bob"}), [pay], db=db)
    ops = service.token("ops", "runs:read", "runs:cancel")
    hitl = Cli(service.url, ops)
    async with running_worker():
        run_id, approval_id = await paused(agent, db)
        for _ in range(100):  # the visibility store catches up with the run's search attributes
            listed = await hitl.json("runs", "list", "--agent", agent.name, "--status", "paused", token=ops)
            if listed:
                break
            await asyncio.sleep(0.1)
        assert [r["run_id"] for r in listed] == [run_id] and listed[0]["pending_tools"] == ["pay"]
        shown = await hitl.json("runs", "show", run_id, token=ops)
        assert shown["status"] == "paused" and shown["requirements"][0]["tool_execution"]["tool_name"] == "pay"
        gone = await hitl("runs", "cancel", run_id, "--reason", "withdrawn", token=ops)
        assert gone.stdout.strip() == f"{run_id} cancelled"
        await hitl("runs", "cancel", run_id, token=ops, code=5)  # ended: nothing to cancel
        await settled(db, run_id, 1, "cancelled")
    assert db.get_approval(approval_id)["status"] == "cancelled"


async def test_a_decision_straight_to_temporal_is_made_as_the_claimed_name(make_agent, script, running_worker, db):
    """`--temporal --as alice` lists from PostgreSQL and decides through the run as "alice"; without --as, exit 2."""
    agent = make_agent(one_call(script, "pay", {"amount": 10, "to": "bob"}), [pay], db=db)
    hitl = Cli("http://127.0.0.1:9")  # no service: --temporal must not need one
    direct = ["--temporal", "--approvals-table", db.approvals_table]
    async with running_worker():
        run_id, approval_id = await paused(agent, db)
        page = await hitl.json("approvals", "list", "--run", run_id, *direct)
        assert [a["id"] for a in page["data"]] == [approval_id]
        # The service's page meta and record fields, from PostgreSQL directly too.
        assert page["meta"]["total_count_estimated"] is False and page["data"][0]["escalation_level"] == 0
        await hitl("approvals", "approve", approval_id, *direct, code=2)
        await hitl("approvals", "approve", approval_id, *direct, "--as", "mallory", code=3)  # not an approver
        result = await hitl.json("approvals", "approve", approval_id, *direct, "--as", "alice")
        assert result["resolved_by"] == "alice" and result["run"]["status"] == "completed"
        await hitl("approvals", "approve", approval_id, *direct, "--as", "bob", code=5)
    assert db.get_approval(approval_id)["resolved_by"] == "alice"


@pytest.fixture
def trusted_key(tmp_path):
    """Strict mode for the test: this process's workers trust this key (and only it); its PEM file."""
    signer = Signer.generate()
    path = tmp_path / "service.pem"
    path.write_bytes(signer.pem())
    signing.trust([signer])
    yield path
    signing.trust(None)


async def test_strict_workers_take_a_temporal_decision_only_when_signed(make_agent, script, running_worker, db, trusted_key):
    """Under strict mode, `--temporal --as alice` is refused (exit 3), also with HITL_SIGNING_KEY set, until --sign signs it."""
    agent = make_agent(one_call(script, "pay", {"amount": 10, "to": "bob"}), [pay], db=db)
    hitl = Cli("http://127.0.0.1:9")
    direct = ["--temporal", "--approvals-table", db.approvals_table, "--as", "alice"]
    async with running_worker():
        run_id, approval_id = await paused(agent, db)
        refused = await hitl("approvals", "approve", approval_id, *direct, code=3)
        assert "unsigned" in refused.stderr and (await agent.aget_run(run_id)).is_paused
        key = {"HITL_SIGNING_KEY": str(trusted_key)}
        refused = await hitl("approvals", "approve", approval_id, *direct, env=key, code=3)  # a key in reach signs nothing
        assert "unsigned" in refused.stderr and (await agent.aget_run(run_id)).is_paused
        result = await hitl.json("approvals", "approve", approval_id, *direct, "--sign", env=key)
        assert result["resolved_by"] == "alice" and result["run"]["status"] == "completed"
