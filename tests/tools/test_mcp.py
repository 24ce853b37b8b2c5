"""Tools from real MCP servers (tests/mcp_servers.py, over stdio and streamable HTTP): approval fails
closed, the tool list is the one the run recorded, a dead server fails the call (or, for a call sent
and never answered, pauses the run for a person) and never wedges the run."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from hitl import RunStatus, ToolDefinitionError
from hitl.tools.mcp import MCPTools
from hitl.workflows import AgentRunWorkflow

ROOT = Path(__file__).resolve().parents[2]


def _stdio(log: Path, **options: Any) -> MCPTools:
    return MCPTools(f"{sys.executable} -m tests.mcp_servers stdio", name="ledger",
                    env={"MCP_LOG": str(log), "PYTHONPATH": str(ROOT)}, **options)


def _ran(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def _offered(model_server: Any, model: str) -> list[list[str]]:
    return [[t["function"]["name"] for t in body.get("tools", [])] for body in model_server.requests_for(model)]


@pytest.fixture
def mcp_log(tmp_path: Path) -> Path:
    return tmp_path / "mcp.log"


@pytest.fixture
def http_server(mcp_http_server: Any) -> Any:
    return mcp_http_server


# -- configuration, no servers ---------------------------------------------------------------------

def test_approval_fails_closed_for_every_tool_the_configuration_does_not_name():
    """Unnamed tools need a decision; 'never' and a mapping say which do not; destructive ones always do."""
    unnamed = MCPTools(url="http://127.0.0.1:1/mcp", requires_confirmation_tools=["transfer"])
    assert unnamed.requires_approval("transfer", destructive=False)
    assert unnamed.requires_approval("search_docs", destructive=False)  # Agno would run it at once
    mapped = MCPTools(url="http://127.0.0.1:1/mcp", approval={"search_docs": "never", "transfer": "always"})
    assert not mapped.requires_approval("search_docs", destructive=False)
    assert mapped.requires_approval("transfer", destructive=False)
    assert mapped.requires_approval("added_later", destructive=False)
    allowed = MCPTools(url="http://127.0.0.1:1/mcp", approval="never")
    assert not allowed.requires_approval("anything", destructive=False)
    assert allowed.requires_approval("delete_record", destructive=True)
    assert MCPTools(url="http://127.0.0.1:1/mcp", approval="always").requires_approval("x", destructive=False)


@pytest.mark.parametrize("kwargs, message", [
    ({}, "give command= (a stdio server) or url="),
    ({"command": "srv", "url": "http://x/mcp"}, "one of them"),
    ({"url": "http://x/mcp", "transport": "carrier-pigeon"}, "transport 'carrier-pigeon'"),
    ({"url": "http://x/mcp", "transport": "stdio"}, "needs command="),
    ({"url": "http://x/mcp", "approval": "sometimes"}, "approval='sometimes'"),
    ({"url": "http://x/mcp", "approval": {"transfer": "maybe"}}, "each tool maps to 'always' or 'never'"),
    ({"url": "http://x/mcp", "session": object()}, "hitl opens its own sessions"),
])
def test_a_toolset_hitl_cannot_use_is_refused_where_it_is_made(kwargs, message):
    """Each wrong configuration is refused with what to give instead."""
    with pytest.raises(ToolDefinitionError, match=re.escape(message)):
        MCPTools(**kwargs)


def test_two_servers_of_one_agent_need_two_names(make_agent):
    from hitl import ConfigurationError

    with pytest.raises(ConfigurationError, match="two MCP servers are named 'ledger'"):
        make_agent("m", [MCPTools(url="http://a/mcp", name="ledger"), MCPTools(url="http://b/mcp", name="ledger")])


# -- stdio -----------------------------------------------------------------------------------------

async def test_a_stdio_tool_allowed_by_name_runs_and_an_unnamed_one_waits_for_a_decision(
        make_agent, script, running_worker, model_server, mcp_log):
    """search_docs is 'never': it runs at once. transfer is not named: the run pauses; confirmed, it runs once."""
    model = script({"match": "docs", "turns": [{"tool_calls": [{"name": "search_docs", "arguments": {"query": "fees"}}]},
                                               {"content": "Read: {results}"}]},
                   {"match": "pay", "turns": [{"tool_calls": [{"name": "transfer", "arguments": {"amount": 40, "to": "acme"}}]},
                                              {"content": "Paid: {results}"}]})
    agent = make_agent(model, [_stdio(mcp_log, approval={"search_docs": "never"})])
    async with running_worker():
        read = await agent.arun("docs please")
        assert read.status == RunStatus.completed and read.content == "Read: docs about fees", read
        paused = await agent.arun("pay acme")
        assert paused.is_paused and _ran(mcp_log) == ["search_docs fees"]
        [req] = paused.active_requirements
        assert req.needs_confirmation and req.tool_execution.tool_name == "transfer"
        assert req.tool_execution.tool_args == {"amount": 40, "to": "acme"}
        req.confirm()
        done = await agent.acontinue_run(run_id=paused.run_id, requirements=paused.requirements)
    assert done.status == RunStatus.completed and done.content == "Paid: sent 40 to acme"
    assert _ran(mcp_log) == ["search_docs fees", "transfer 40 acme"]
    # The model was offered the server's tools, the same on every turn of a run.
    offered = _offered(model_server, model)
    assert all(names == offered[0] for names in offered) and {"search_docs", "transfer", "delete_record"} <= set(offered[0])


async def test_a_rejected_mcp_call_never_reaches_the_server(make_agent, script, running_worker, mcp_log):
    """Rejected: the server never sees the call; the model reads the rejection."""
    model = script({"turns": [{"tool_calls": [{"name": "transfer", "arguments": {"amount": 9, "to": "mallory"}}]},
                              {"content": "Told: {results}"}]})
    agent = make_agent(model, [_stdio(mcp_log)])
    async with running_worker():
        paused = await agent.arun("pay mallory")
        paused.active_requirements[0].reject("not to mallory")
        done = await agent.acontinue_run(run_id=paused.run_id, requirements=paused.requirements)
    assert done.status == RunStatus.completed and "not to mallory" in done.content
    assert _ran(mcp_log) == []


async def test_a_destructive_tool_waits_for_a_decision_even_where_the_server_is_allowed(
        make_agent, script, running_worker, mcp_log):
    """approval='never' for the server; delete_record is annotated destructiveHint: it still pauses."""
    model = script({"turns": [{"tool_calls": [{"name": "delete_record", "arguments": {"record": 7}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [_stdio(mcp_log, approval="never")])
    async with running_worker():
        paused = await agent.arun("delete 7")
        assert paused.is_paused and paused.active_requirements[0].tool_execution.tool_name == "delete_record"
        paused.active_requirements[0].confirm()
        done = await agent.acontinue_run(run_id=paused.run_id, requirements=paused.requirements)
    assert done.content == "deleted 7" and _ran(mcp_log) == ["delete_record 7"]


async def test_arguments_that_fail_the_servers_schema_are_told_to_the_model_and_never_sent(
        make_agent, script, running_worker, mcp_log):
    """amount must be an integer: the call is refused before it is planned; the server never sees it."""
    model = script({"turns": [{"tool_calls": [{"name": "transfer", "arguments": {"amount": "lots", "to": "acme"}}]},
                              {"content": "Told: {results}"}]})
    agent = make_agent(model, [_stdio(mcp_log, approval="never")])
    async with running_worker():
        done = await agent.arun("pay")
    assert done.status == RunStatus.completed and "arguments for tool 'transfer' are invalid: amount" in done.content
    assert _ran(mcp_log) == []


async def test_a_servers_own_tool_error_is_the_output_the_model_reads(make_agent, script, running_worker, mcp_log):
    """isError from the server: the model reads it; the call is not retried."""
    model = script({"turns": [{"tool_calls": [{"name": "flaky", "arguments": {"what": "audit"}}]},
                              {"content": "Told: {results}"}]})
    agent = make_agent(model, [_stdio(mcp_log, approval="never")])
    async with running_worker():
        done = await agent.arun("try it")
    assert done.status == RunStatus.completed and done.content.startswith("Told: Error:"), done.content
    assert _ran(mcp_log) == ["flaky audit"]


async def test_a_server_that_dies_mid_call_is_started_again_and_the_idempotent_call_retried(
        make_agent, script, running_worker, mcp_log):
    """crash_once kills the stdio server mid-call: a retryable error, a new session, the call answered."""
    model = script({"turns": [{"tool_calls": [{"name": "crash_once", "arguments": {"token": "t1"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [_stdio(mcp_log, approval="never")])
    async with running_worker():
        done = await asyncio.wait_for(agent.arun("crash"), 60)
    assert done.status == RunStatus.completed and done.content == "survived t1", done
    assert _ran(mcp_log) == ["crash_once t1 (died)", "crash_once t1"]


async def test_include_exclude_and_prefix_shape_what_the_model_is_offered(
        make_agent, script, running_worker, model_server, mcp_log):
    """include_tools keeps two tools, tool_name_prefix names them ledger_<name>; the call reaches the server's name."""
    model = script({"turns": [{"tool_calls": [{"name": "ledger_search_docs", "arguments": {"query": "tax"}}]},
                              {"content": "{results}"}]})
    toolset = _stdio(mcp_log, approval="never", include_tools=["search_docs", "transfer"], tool_name_prefix="ledger")
    agent = make_agent(model, [toolset])
    async with running_worker():
        done = await agent.arun("tax docs")
    assert done.content == "docs about tax" and _ran(mcp_log) == ["search_docs tax"]
    assert sorted(_offered(model_server, model)[0]) == ["ledger_search_docs", "ledger_transfer"]


# -- streamable HTTP -------------------------------------------------------------------------------

async def test_a_tool_the_server_adds_mid_run_is_not_the_runs_and_the_next_run_must_approve_it(
        make_agent, script, running_worker, model_server, http_server, client):
    """The run's tools are those it recorded: a tool added meanwhile is unknown to it (never run); a new
    run is offered it, and, unnamed, it waits for a decision. The run's history replays."""
    from mcp import Client

    model = script({"match": "first", "turns": [
        {"tool_calls": [{"name": "transfer", "arguments": {"amount": 5, "to": "bob"}}]},
        {"tool_calls": [{"name": "late_tool", "arguments": {"note": "sneaky"}}]},
        {"content": "Then: {results}"}]},
        {"match": "second", "turns": [{"tool_calls": [{"name": "late_tool", "arguments": {"note": "asked"}}]},
                                      {"content": "{results}"}]})
    agent = make_agent(model, [MCPTools(url=http_server.url, name="ledger", approval={"transfer": "always"})])
    async with running_worker():
        paused = await agent.arun("first")
        async with Client(http_server.url) as direct:
            await direct.call_tool("add_tool", {"name": "late_tool"})
        paused.active_requirements[0].confirm()
        done = await agent.acontinue_run(run_id=paused.run_id, requirements=paused.requirements)
        assert done.status == RunStatus.completed and "Unknown tool 'late_tool'" in done.content, done.content
        assert "late_tool sneaky" not in _ran(http_server.log)
        second = await agent.arun("second")
        assert second.is_paused and second.active_requirements[0].tool_execution.tool_name == "late_tool"
    offered = _offered(model_server, model)
    assert "late_tool" not in offered[0] and "late_tool" not in offered[2] and "late_tool" in offered[-1]
    history = await client.get_workflow_handle(paused.run_id).fetch_history()
    await Replayer(workflows=[AgentRunWorkflow], data_converter=pydantic_data_converter).replay_workflow(
        WorkflowHistory.from_json(paused.run_id, history.to_json()))


async def test_a_dead_http_server_makes_a_sent_transfer_an_uncertain_outcome_for_a_person(
        make_agent, script, running_worker, http_server):
    """The server is gone when the confirmed transfer (not idempotent) is sent: whether it ran is not
    known, so the run pauses on an uncertain outcome, never retried by itself; rejected, the run completes."""
    model = script({"turns": [{"tool_calls": [{"name": "transfer", "arguments": {"amount": 3, "to": "carol"}}]},
                              {"content": "Told: {results}"}]})
    agent = make_agent(model, [MCPTools(url=http_server.url, name="ledger", timeout_seconds=3)])
    async with running_worker():
        paused = await agent.arun("pay carol")
        http_server.stop()
        paused.active_requirements[0].confirm()
        again = await asyncio.wait_for(agent.acontinue_run(run_id=paused.run_id, requirements=paused.requirements), 60)
        [req] = again.active_requirements
        assert again.is_paused and req.uncertain_outcome and req.tool_execution.tool_name == "transfer", again
        req.reject("checked the ledger: it did not go out")
        done = await asyncio.wait_for(agent.acontinue_run(run_id=again.run_id, requirements=again.requirements), 60)
    assert done.status == RunStatus.completed and "it did not go out" in done.content, done.content
    assert _ran(http_server.log) == []


async def test_a_dead_http_server_fails_an_idempotent_call_clearly_and_the_run_goes_on(
        make_agent, script, running_worker, http_server):
    """delete_record is idempotent: tried again, then the model reads an error naming the server; the run completes."""
    model = script({"turns": [{"tool_calls": [{"name": "delete_record", "arguments": {"record": 4}}]},
                              {"content": "Told: {results}"}]})
    agent = make_agent(model, [MCPTools(url=http_server.url, name="ledger", timeout_seconds=2)])
    async with running_worker():
        paused = await agent.arun("delete 4")
        http_server.stop()
        paused.active_requirements[0].confirm()
        done = await asyncio.wait_for(agent.acontinue_run(run_id=paused.run_id, requirements=paused.requirements), 90)
    assert done.status == RunStatus.completed and "MCP server 'ledger': could not" in done.content, done.content
    assert not done.requirements[0].uncertain_outcome and _ran(http_server.log) == []


async def test_a_slow_transfer_is_given_up_once_and_a_person_decides_while_other_calls_go_on(
        make_agent, script, running_worker, mcp_log):
    """slow_transfer (not idempotent) takes longer than timeout_seconds: one attempt, then an uncertain
    outcome for a person; search_docs, called in the same turn on the same session, is answered."""
    model = script({"turns": [{"tool_calls": [{"name": "slow_transfer", "arguments": {"amount": 7, "seconds": 4}},
                                              {"name": "search_docs", "arguments": {"query": "limits"}}]},
                              {"content": "Told: {results}"}]})
    agent = make_agent(model, [_stdio(mcp_log, approval="never", timeout_seconds=1.5)])
    async with running_worker():
        paused = await asyncio.wait_for(agent.arun("pay slowly"), 60)
        [req] = paused.active_requirements
        assert paused.is_paused and req.uncertain_outcome and req.tool_execution.tool_name == "slow_transfer", paused
        assert "search_docs limits" in _ran(mcp_log) and _ran(mcp_log).count("slow_transfer 7 started") == 1
        req.reject("it went out: seen in the ledger")
        done = await asyncio.wait_for(agent.acontinue_run(run_id=paused.run_id, requirements=paused.requirements), 60)
    assert done.status == RunStatus.completed and "docs about limits" in done.content, done.content
    assert _ran(mcp_log).count("slow_transfer 7 started") == 1


async def test_an_approver_may_correct_an_mcp_calls_arguments_checked_against_the_servers_schema(
        make_agent, script, running_worker, mcp_log):
    """confirm(arguments=) on an MCP tool: checked against its recorded schema (a bad edit refused), then run as edited."""
    from hitl import InvalidDecisionError

    model = script({"turns": [{"tool_calls": [{"name": "transfer", "arguments": {"amount": 900, "to": "acme"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [_stdio(mcp_log)])
    async with running_worker():
        paused = await agent.arun("pay acme")
        paused.active_requirements[0].confirm(arguments={"amount": "lots", "to": "acme"})
        with pytest.raises(InvalidDecisionError, match="amount"):
            await agent.acontinue_run(run_id=paused.run_id, requirements=paused.requirements)
        fresh = await agent.aget_run(paused.run_id)
        fresh.active_requirements[0].confirm(arguments={"amount": 90, "to": "acme"})
        done = await agent.acontinue_run(run_id=fresh.run_id, requirements=fresh.requirements)
    assert done.content == "sent 90 to acme" and _ran(mcp_log) == ["transfer 90 acme"]


async def test_names_in_the_configuration_may_carry_the_prefix_the_model_sees(make_agent, script, running_worker,
                                                                             mcp_log):
    """approval={"ledger_search_docs": "never"} with tool_name_prefix="ledger": the tool runs at once."""
    model = script({"turns": [{"tool_calls": [{"name": "ledger_search_docs", "arguments": {"query": "vat"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [_stdio(mcp_log, tool_name_prefix="ledger", approval={"ledger_search_docs": "never"})])
    async with running_worker():
        done = await agent.arun("vat docs")
    assert done.status == RunStatus.completed and done.content == "docs about vat" and _ran(mcp_log) == ["search_docs vat"]


async def test_a_configuration_tightened_mid_run_applies_to_the_runs_later_calls(make_agent, script, running_worker,
                                                                                 mcp_log):
    """Allowed when the run listed its tools, search_docs needs a decision once the configuration says so."""
    model = script({"turns": [{"tool_calls": [{"name": "delete_record", "arguments": {"record": 1}}]},
                              {"tool_calls": [{"name": "search_docs", "arguments": {"query": "audit"}}]},
                              {"content": "{results}"}]})
    toolset = _stdio(mcp_log, approval="never")
    agent = make_agent(model, [toolset])
    async with running_worker():
        paused = await agent.arun("delete then search")
        assert paused.active_requirements[0].tool_execution.tool_name == "delete_record"  # destructive: always
        toolset.approval = "always"
        paused.active_requirements[0].confirm()
        again = await agent.acontinue_run(run_id=paused.run_id, requirements=paused.requirements)
        assert again.is_paused and again.active_requirements[0].tool_execution.tool_name == "search_docs", again
    assert _ran(mcp_log) == ["delete_record 1"]


async def test_headers_reach_the_server_never_the_runs_history_and_bad_names_are_never_offered(
        make_agent, script, running_worker, model_server, http_server, client):
    """headers= go to the HTTP server only; a tool whose name no model API accepts is left out."""
    model = script({"turns": [{"tool_calls": [{"name": "search_docs", "arguments": {"query": "keys"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [MCPTools(url=http_server.url, name="ledger", approval="never",
                                        headers={"Authorization": "Bearer sekret-7781"})])
    async with running_worker():
        done = await agent.arun("keys docs")
    assert done.content == "docs about keys"
    history = await client.get_workflow_handle(done.run_id).fetch_history()
    assert "sekret-7781" not in history.to_json()
    assert "bad name!" not in _offered(model_server, model)[0]


