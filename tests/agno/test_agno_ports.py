"""Agno-style programs in tests/agno_ports/, run as a user runs a ported script: ``python script.py``.

Each script is our own small program in the shape of Agno's human-in-the-loop cookbook (the same
idioms, other tools and words), importing only from ``hitl`` and using ``PostgresDb(...)``. Each runs
as a subprocess against the session's Temporal server, a fresh PostgreSQL database of its own and a
scripted model server of its own, with ``HITL_INLINE_WORKER=auto`` so that the script serves its own
agents, as a ported script does. The scripts assert what they expect (as Agno's examples do); the
tests check their exit code, a few lines they print and, from the file their tools append to
(``PORT_TOOL_LOG``), which tools ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from hitl.testing import ScriptedModelServer

ROOT = Path(__file__).resolve().parents[2]
PORTS = ROOT / "tests" / "agno_ports"
TIMEOUT = 90
DELEGATE = "delegate_task_to_member"


# ------------------------------------------------------------------------------------------- scripts


def call(name: str, **arguments: Any) -> dict[str, Any]:
    """A model turn that calls one tool."""
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def calls(*pairs: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """A model turn that calls several tools at once."""
    return {"tool_calls": [{"name": n, "arguments": a} for n, a in pairs]}


def say(text: str) -> dict[str, Any]:
    return {"content": text}


def rule(match: str, *turns: dict[str, Any]) -> dict[str, Any]:
    return {"match": match, "turns": list(turns)}


def model(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"rules": list(rules)}


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str
    tools: list[str]
    """The lines the script's tools appended to PORT_TOOL_LOG, in order."""
    requests: list[dict[str, Any]]
    """What the script's agents sent the model."""

    def explain(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout[-6000:]}\n--- stderr\n{self.stderr[-6000:]}"


@pytest.fixture
def run_port(temporal_server: dict[str, Any], database_url: str, tmp_path: Path):
    """``run_port("script", {model_id: script}, stdin="...", env={...})``: the script run as ``python script.py``,
    with ``env`` added to its environment."""
    servers: list[ScriptedModelServer] = []
    databases: list[str] = []

    def fresh_database() -> str:
        name = f"port_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        databases.append(name)
        if "://" not in database_url:
            return make_conninfo(database_url, dbname=name)
        return urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))

    def run(script: str, scripts: dict[str, Any], stdin: str = "", env: dict[str, str] | None = None) -> Ran:
        server = ScriptedModelServer(scripts=scripts).start()
        servers.append(server)
        log = tmp_path / f"{script}.tools.log"
        log.touch()
        child = {
            **os.environ,
            "TEMPORAL_ADDRESS": temporal_server["address"],
            # A task queue of its own: no other test's (gone) inline worker looks like it polls it.
            "TEMPORAL_TASK_QUEUE": f"ports-{uuid.uuid4().hex[:10]}",
            "DATABASE_URL": fresh_database(),
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-test",
            "HITL_INLINE_WORKER": "auto",
            "PYTHONPATH": str(ROOT),
            "PORT_TOOL_LOG": str(log),
            "COLUMNS": "200",
            "NO_COLOR": "1",
            **(env or {}),
        }
        proc = subprocess.run([sys.executable, str(PORTS / f"{script}.py")], cwd=tmp_path, env=child, input=stdin,
                              text=True, capture_output=True, timeout=TIMEOUT)
        ran = Ran(proc.returncode, proc.stdout, proc.stderr, log.read_text().splitlines(), list(server.requests))
        if os.environ.get("PORTS_SHOW"):
            print(ran.explain(), ran.tools)
        return ran

    yield run
    for server in servers:
        server.stop()
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for name in databases:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error:
        pass  # a session server already gone takes its databases with it


def ok(ran: Ran, *lines: str) -> None:
    """The script exited 0 and printed each of ``lines``."""
    assert ran.returncode == 0, ran.explain()
    for line in lines:
        assert line in ran.stdout, f"{line!r} not printed\n{ran.explain()}"


# --------------------------------------------------------------------------------------------- tests


def test_confirm_and_reject_at_the_terminal(run_port):
    """Prompt.ask answers on stdin: "n" rejects with a note the model reads, "y" confirms; pprint each time."""
    scripts = {"gpt-5-mini": model(rule(
        "mailbox of dana",
        call("archive_mailbox", owner="dana"),
        call("snooze_mailbox", owner="dana", hours=8, note="{results}"),
        say("Done: {results}"),
    ))}
    ran = run_port("confirm_from_terminal", scripts, stdin="n\ny\n")
    ok(ran, "asked: ['archive_mailbox', 'snooze_mailbox']", "FINAL: Done: The mailbox of dana is snoozed for 8 hours")
    assert ran.tools == ["snooze_mailbox dana 8"], ran.tools  # the rejected archive never ran


def test_session_state_changed_by_a_confirmed_tool(run_port):
    """run_context.session_state written by a gated tool; get_session_state after the pause and after
    yes/no; RunStatus compared; the {reading_list} of the instructions filled from the state."""
    scripts = {"gpt-4o-mini": model(rule("the book (\\w+)", call("add_to_reading_list", title="{1}"), say("Done: {results}")))}
    ran = run_port("session_state_confirm", scripts, stdin="y\nn\n")
    ok(ran, "Status: paused", "state after pause: {'reading_list': []}", "state after yes: {'reading_list': ['Dune']}",
       "state after no: {'reading_list': ['Dune']}")
    assert ran.tools == ["add_to_reading_list Dune"], ran.tools
    systems = [m["content"] for r in ran.requests for m in r["messages"] if m["role"] in ("system", "developer")]
    assert any("The reading list is: []" in s for s in systems), systems
    assert any("The reading list is: ['Dune']" in s for s in systems), systems


def test_external_tool_beside_a_plain_function(run_port):
    """The caller runs the external tool with .entrypoint(**tool_args) and set_external_execution_result;
    the undecorated function in the same turn runs in the agent, once."""
    scripts = {"gpt-5-mini": model(rule(".", calls(("today", {}), ("count_lines", {"path": "shopping.txt"})),
                                        say("Answer: {results}")))}
    ran = run_port("external_and_plain_tools", scripts)
    ok(ran, "Running count_lines({'path': 'shopping.txt'}) here",
       "FINAL: Answer: Tuesday 2 January 2029 | shopping.txt has 3 lines")
    assert sorted(ran.tools) == ["count_lines shopping.txt", "today"], ran.tools


def test_user_input_by_field_value_and_by_provide_user_input(run_port):
    """field.value written back for every field (input() for the missing one); then provide_user_input
    with every field of the schema, the model's value included."""
    scripts = {"gpt-5-mini": model(
        rule("Invoice", call("send_invoice", amount=120, currency="EUR"), say("Done: {results}")),
        rule("Harbour Inn", call("book_room", hotel="Harbour Inn"), say("Done: {results}")),
    )}
    ran = run_port("user_input_fields", scripts, stdin="Ms Okafor\nLee Park\n3\n")
    ok(ran, "fields: ['amount', 'currency', 'recipient']", "Type: <class 'str'>", "Type: <class 'float'>",
       "INVOICE: Done: Invoice for 120.0 EUR sent to Ms Okafor",
       "answers: {'hotel': 'Harbour Inn', 'guest': 'Lee Park', 'nights': '3'}",
       "BOOKING: Done: Lee Park stays 3 nights at Harbour Inn")
    assert ran.tools == ["send_invoice 120.0 EUR Ms Okafor", "book_room Harbour Inn Lee Park 3"], ran.tools


def test_approval_listed_at_the_pause_then_confirmed_and_resolved(run_port):
    """@approval: get_approvals(status="pending") right after the pause (source_type agent), confirm and
    continue_run, then update_approval(expected_status="pending") answers the record; nothing left pending."""
    scripts = {"gpt-5-mini": model(rule("billing", call("rotate_api_key", service="billing"), say("Done: {results}")))}
    ran = run_port("approval_confirm", scripts)
    # update_approval after the run decided answers the record as it stands: resolved_by is who decided in
    # the run (nobody named here), not the name given to update_approval (README: "Different on purpose").
    ok(ran, "Pending approvals: 1", "source_type=agent", "Content: Done: The key of billing was rotated",
       "status=approved resolved_by=", "Pending approvals now: 0", "--- All checks passed ---")
    assert ran.tools == ["rotate_api_key billing"], ran.tools


def test_approval_lifecycle_list_resolve_continue_delete(run_port):
    """Two paused runs; listed, counted, filtered by run, got by id; decided in the db (a second decision
    answers None); the stale RunOutputs continued with the same decisions; the records deleted."""
    scripts = {"gpt-5-mini": model(
        rule("E-0042", call("revoke_access", employee_id="E-0042"), say("Done: {results}")),
        rule("Purge (\\d+) GB of cache in ([\\w-]+)", call("purge_cache", region="{2}", size_gb="{num:1}"),
             say("Done: {results}")),
    )}
    ran = run_port("approval_lifecycle", scripts)
    ok(ran, "Pending: 2", "Approved by security@example.com", "Second decision refused",
       "Result 1: Done: All access of E-0042 revoked", "--- All checks passed ---")
    assert ran.tools == ["revoke_access E-0042"], ran.tools  # the rejected purge never ran


def test_approval_decided_in_the_db_then_continued_by_run_id(run_port):
    """The admin path: update_approval, then continue_run(run_id=...) with no requirements; the post-hook and
    run.metadata["approval"] name who decided; the agent exists only under __main__."""
    scripts = {"gpt-5-mini": model(rule("ACC-778", call("close_account", account_id="ACC-778"), say("Done: {results}")))}
    ran = run_port("approval_post_hook", scripts)
    ok(ran, "Resolved by: supervisor@example.com", "[hook] approval", "approved supervisor@example.com",
       "--- All checks passed ---")
    assert ran.tools == ["close_account ACC-778"], ran.tools


def test_approval_flow_in_async_main(run_port):
    """The agent made again in async def main(); await arun / acontinue_run; the record resolved after."""
    scripts = {"gpt-5-mini": model(rule("ORD-31", call("refund_order", order_id="ORD-31", amount=19.5), say("Done: {results}")))}
    ran = run_port("approval_async", scripts)
    ok(ran, "Run status: paused", "Pending approvals: 1", "Content: Done: Refunded 19.5 on order ORD-31",
       "Resolved: approved by", "--- All checks passed ---")
    assert ran.tools == ["refund_order ORD-31 19.5"], ran.tools


def test_audit_approvals_recorded_after_the_decision(run_port):
    """@approval(type="audit"): a confirmed call and a rejected one leave approved and rejected audit records."""
    scripts = {"gpt-5-mini": model(rule("Export the (\\w+) customers", call("export_customer_list", segment="{1}"),
                                        say("Done: {results}")))}
    ran = run_port("audit_approvals", scripts)
    ok(ran, "Approved audit records: 1", "Rejected audit records: 1", "Audit records: 2",
       "--- All checks passed ---")
    assert ran.tools == ["export_customer_list wholesale"], ran.tools


def test_audit_approvals_not_listed_while_the_run_waits(run_port):
    """Agno's audit examples: nothing listed or pending while the run waits (external and user-input tools)."""
    scripts = {"gpt-5-mini": model(
        rule("gateway", call("scan_ports", host="gateway"), say("Done: {results}")),
        rule("supplier (\\d+)", call("pay_supplier", amount="{num:1}"), say("Done: {results}")),
    )}
    ran = run_port("audit_while_paused", scripts)
    ok(ran, "Records while paused: 0", "Audit records: 1, source_type=agent", "Audit records while paused: 1",
       "--- All checks passed ---")
    assert ran.tools == ["pay_supplier 310.0 DE02 1203 0000 0000 2020 51"], ran.tools


def test_print_response_shows_the_paused_run(run_port):
    """agent.print_response on a run that pauses prints a "Run Paused" panel; the tool does not run."""
    scripts = {"gpt-4o": model(rule("roses", call("water_plants", zone="roses", liters=12), say("Done: {results}")))}
    ran = run_port("print_response_paused", scripts)
    ok(ran, "Run Paused", "water_plants", "--- All checks passed ---")
    assert ran.tools == [], ran.tools


def test_agent_run_streamed_with_async_for(run_port):
    """async for over agent.arun(stream=True) with is_paused checks; acontinue_run(stream=True) iterated."""
    scripts = {"gpt-5.2": model(rule("Chez Nous", call("book_table", restaurant="Chez Nous", people=4),
                                     say("Done: {results}")))}
    ran = run_port("agent_async_stream", scripts, stdin="\n")  # an empty answer takes the default, y
    ok(ran, "book_table({'restaurant': 'Chez Nous', 'people': 4})", "STREAMED: Done: Table for 4 at Chez Nous is booked")
    assert ran.tools == ["book_table Chez Nous 4"], ran.tools


def test_an_mcp_servers_tool_confirmed_in_a_streamed_run(run_port, mcp_http_server):
    """Agno's MCP toolkit example's shape: MCPTools(transport="streamable-http", url=...,
    requires_confirmation_tools=[...]) against a real MCP server; the paused stream answered at a prompt."""
    scripts = {"gpt-5.2": model(rule("fees", call("search_docs", query="fees"), say("Answer: {results}")))}
    ran = run_port("mcp_confirm_stream", scripts, stdin="y\n", env={"LEDGER_MCP_URL": mcp_http_server.url})
    ok(ran, "search_docs({'query': 'fees'})", "Answer: docs about fees")
    assert mcp_http_server.log.read_text().splitlines() == ["search_docs fees"]
    assert "search_docs" in [t["name"] for t in ran.requests[0]["tools"]], ran.requests[0].get("tools")


# ---------------------------------------------------------------------------------------------- teams


def team_scripts(leader: str, member: str, member_turns: dict[str, list[dict[str, Any]]],
                 target: str) -> dict[str, Any]:
    """The leader delegates the user's message to ``target`` as "TASK: <message>", then answers with the
    member's reply; the member's turns are chosen by a pattern of its task."""
    return {
        leader: model(rule("(.+)", call(DELEGATE, member_id=target, task="TASK: {1}"), say("Team: {results}"))),
        member: model(*(rule(pattern, *turns) for pattern, turns in member_turns.items())),
    }


def test_team_member_confirmation_at_the_terminal(run_port):
    """A member's pause pauses the team (member_agent_name shown); reject(note=) then confirm at the prompt;
    team.continue_run(response); db, telemetry=False, add_history_to_context=True, session_id=."""
    scripts = team_scripts("gpt-5.2", "gpt-5-mini", {
        "(web-\\d)": [call("restart_server", host="{1}"), say("Member: {results}")]}, "OpsAgent")
    ran = run_port("team_member_confirm", scripts, stdin="n\ny\n")
    ok(ran, "members: ['OpsAgent']", "Member OpsAgent wants to run restart_server({'host': 'web-1'})",
       "SECOND: Team: Member: web-2 restarted")
    assert ran.tools == ["restart_server web-2"], ran.tools
    # add_history_to_context: the leader's second run sees the first one
    second = [r for r in ran.requests if r.get("model") == "gpt-5.2" and "web-2" in str(r["input"])]
    assert second and "web-1" in str(second[0]["input"]), second[:1]


def test_teams_without_a_db_reject_a_member_and_confirm_their_own_tool(run_port):
    """No db: the TeamRunOutput handed back positionally; a member's call rejected with a note; a call of the
    team's own tool (member_agent_name None) confirmed."""
    scripts = {
        **team_scripts("gpt-5.2", "gpt-5-mini", {".": [call("drop_table", table="sessions_old"), say("Member: {results}")]},
                       "DBA Agent"),
        "gpt-5.5": model(rule("version ([\\d.]+) to the (\\w+)", call("publish_release", version="{1}", channel="{2}"),
                              say("Released: {results}"))),
    }
    ran = run_port("team_without_db", scripts)
    ok(ran, "Rejecting DBA Agent: drop_table({'table': 'sessions_old'})", "Dropping tables needs a ticket first",
       "RELEASE TEAM: Released: Release 3.2 published to beta")
    assert ran.tools == ["publish_release 3.2 beta"], ran.tools


def test_team_member_asks_for_input_twice(run_port):
    """A member pauses twice in one team run: while run_response.is_paused, provide_user_input of every field."""
    scripts = team_scripts("gpt-5.2", "gpt-5-mini", {
        ".": [call("ask_contact"), call("ask_interests"), say("Club: {results}")]}, "CoachAgent")
    ran = run_port("team_multi_round_input", scripts, stdin="kim@example.com\ntennis\nbeginner\n")
    ok(ran, "FINAL: Team: Club: The user plays tennis at beginner level")
    assert ran.tools == ["ask_contact kim@example.com", "ask_interests tennis beginner"], ran.tools


def test_team_stream_external_result_and_rejection(run_port):
    """for ev in team.run(stream=True), isinstance(ev, TeamRunPausedEvent); entrypoint + set_external_execution_result,
    then a reject(note=); continue_run(run_id=, session_id=, requirements=, stream=True) into pprint."""
    scripts = team_scripts("gpt-5.2", "gpt-5-mini", {
        "disk": [call("disk_usage", command="echo data: 71% used"), say("Member: {results}")],
        "scratch": [call("wipe_volume", volume="scratch"), say("Member: {results}")],
    }, "Storage Agent")
    ran = run_port("team_stream", scripts)
    ok(ran, "Running disk_usage({'command': 'echo data: 71% used'}) locally", "DISK RUN:", "REJECTED RUN:",
       "--- All checks passed ---")
    assert ran.tools == ["disk_usage echo data: 71% used"], ran.tools


def test_team_async_stream_with_user_input(run_port):
    """async for over team.arun(stream=True); provide_user_input; acontinue_run(stream=True) into apprint_run_response."""
    scripts = team_scripts("gpt-5.2", "gpt-5-mini", {
        "8:15": [call("reserve_seat", train="8:15 to Leeds"), say("Member: {results}")]}, "Rail Agent")
    ran = run_port("team_async_stream", scripts)
    # The script serves its own runs, so the text streams as written: the member's, then the leader's
    # (Agno's team stream carries its members' events too).
    ok(ran, "Team paused - input needed", "needs_user_input=True needs_confirmation=False", "seat - ",
       "CONTINUED: Member: Seat 14A on 8:15 to Leeds reservedTeam: Member: Seat 14A on 8:15 to Leeds reserved",
       "--- All checks passed ---")
    assert ran.tools == ["reserve_seat 8:15 to Leeds 14A"], ran.tools


def test_team_dependencies_reach_the_member_tool(run_port):
    """dependencies= on team.arun and acontinue_run reach the member's gated tool as run_context.dependencies."""
    scripts = team_scripts("gpt-5.2", "gpt-5-mini", {
        "(@\\w+) from my (\\w+) list": [call("unfollow_accounts", list_name="{2}", accounts=["{1}"]), say("Member: {results}")]},
        "Social Agent")
    ran = run_port("team_dependencies", scripts)
    ok(ran, "Confirming unfollow_accounts({'list_name': 'news', 'accounts': ['@spam1']})", "FINAL: Team: Member: ", "9f3a")
    assert ran.tools == ["unfollow_accounts news ['@spam1'] tok-secret-9f3a"], ran.tools
    # the credential stayed in the caller's process: never sent to the model
    assert all("tok-secret" not in str(r) for r in ran.requests)
