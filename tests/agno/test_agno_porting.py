"""Agno code as written: agents made anywhere, a script that serves itself, read-your-writes, the admin
path, hooks, streaming, sessions and dependencies, on the real stack."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from hitl import Agent, OpenAIChat, RunStatus, UnresolvedRequirementsError, tool
from hitl.approval import approval
from hitl.errors import ConfigurationError, RequirementAlreadyResolvedError
from hitl.run import RunContext
from hitl.run.agent import RunContentEvent, RunPausedEvent

ROOT = Path(__file__).resolve().parents[2]
WIPED_LOG: Path | None = None
"""Where ``wipe_account`` notes each account it wiped, when a test sets it (it runs on this process's workers)."""


@approval
@tool(requires_confirmation=True)
def wipe_account(account: str) -> str:
    """Wipe an account.

    Args:
        account: The account id.
    """
    if WIPED_LOG is not None:
        with open(WIPED_LOG, "a") as f:
            f.write(f"wiped {account}\n")
    return f"wiped {account}"


@tool(requires_confirmation=True)
def add_to_basket(item: str, run_context: RunContext) -> str:
    """Add an item to the basket.

    Args:
        item: What to add.
    """
    assert run_context.session_state is not None
    run_context.session_state.setdefault("basket", []).append(item)
    token = (run_context.dependencies or {}).get("token")
    return f"added {item}; basket {run_context.session_state['basket']}; token {token}"


# ------------------------------------------------------------------ names of agents made anywhere
top_level_twin = Agent(OpenAIChat("m-twin", base_url="http://127.0.0.1:9/v1"), tools=[wipe_account])


def _made_in_a_function() -> Agent:
    return Agent(OpenAIChat("m-twin", base_url="http://127.0.0.1:9/v1"), tools=[wipe_account])


def test_an_agent_made_in_a_function_takes_the_name_of_the_same_agent_of_its_module():
    assert _made_in_a_function().name == f"{__name__}.top_level_twin"


def test_an_agent_like_several_of_its_module_is_refused_naming_them():
    import types

    module = types.ModuleType("twins_module")
    sys.modules["twins_module"] = module
    try:
        exec(textwrap.dedent("""
            from hitl import Agent, OpenAIChat
            a = Agent(OpenAIChat("m-twins", base_url="http://127.0.0.1:9/v1"))
            b = Agent(OpenAIChat("m-twins", base_url="http://127.0.0.1:9/v1"))
            def make():
                return Agent(OpenAIChat("m-twins", base_url="http://127.0.0.1:9/v1"))
        """), module.__dict__)
        made = module.make()
        with pytest.raises(ConfigurationError, match=r"twins_module\.a, twins_module\.b.*give it name="):
            made.name  # noqa: B018
    finally:
        del sys.modules["twins_module"]


# ------------------------------------------------------------------ a script that serves itself
def _run_script(tmp_path: Path, source: str, env: dict[str, str], temporal_server: dict[str, Any],
                model_server: Any) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"port_{uuid.uuid4().hex[:6]}.py"
    path.write_text(textwrap.dedent(source))
    full = {**os.environ, "TEMPORAL_ADDRESS": temporal_server["address"], "OPENAI_BASE_URL": model_server.base_url,
            "OPENAI_API_KEY": "sk-test", "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=full, text=True, capture_output=True,
                          timeout=120)


SELF_SERVING = """
    import asyncio
    from hitl.agent import Agent
    from hitl.models.openai import OpenAIChat
    from hitl.tools import tool

    @tool(requires_confirmation=True)
    def ring_bell(times: int) -> str:
        \"\"\"Ring the bell.\"\"\"
        return f"rang {times}"

    async def main():
        agent = Agent(model=OpenAIChat(id="MODEL"), tools=[ring_bell])  # made in main(), never named
        run = await agent.arun("ring the bell twice")
        print("status", run.status, run.waiting_for_worker)
        if run.is_paused:
            for req in run.active_requirements:
                req.confirm()
            run = await agent.acontinue_run(run_id=run.run_id, requirements=run.requirements)
            print("status", run.status, run.content)

    if __name__ == "__main__":
        asyncio.run(main())
"""


def test_a_script_serves_its_own_agent_when_no_worker_does(tmp_path, script, temporal_server, model_server):
    model = script({"turns": [{"tool_calls": [{"name": "ring_bell", "arguments": {"times": 2}}]},
                              {"content": "Done: {results}"}]})
    done = _run_script(tmp_path, SELF_SERVING.replace("MODEL", model), {"HITL_INLINE_WORKER": "auto"},
                       temporal_server, model_server)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "status paused None" in done.stdout and "status completed Done: rang 2" in done.stdout
    assert "this process serves agent" in done.stderr


def test_with_the_inline_worker_off_a_script_is_told_no_worker_serves_it(tmp_path, script, temporal_server,
                                                                          model_server):
    model = script({"turns": [{"content": "never"}]})
    done = _run_script(tmp_path, SELF_SERVING.replace("MODEL", model), {"HITL_INLINE_WORKER": "off"},
                       temporal_server, model_server)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "status running no worker polls task queue" in done.stdout
    # Started without the update no worker takes: nothing is left to the SDK's native code at exit.
    assert "never retrieved" not in done.stderr and "Fatal" not in done.stderr, done.stderr[-3000:]


def test_an_unknown_inline_worker_mode_is_refused(monkeypatch):
    from hitl._core import inline

    monkeypatch.setattr(inline, "_disabled", False)  # a service started earlier in this process turns it off
    monkeypatch.setenv("HITL_INLINE_WORKER", "sometimes")
    with pytest.raises(ConfigurationError, match="HITL_INLINE_WORKER='sometimes': expected auto, on or off"):
        inline.mode()
    monkeypatch.setenv("HITL_INLINE_WORKER", "auto")
    monkeypatch.setenv("HITL_DECISION_KEYS", "/nonexistent.jwks")
    assert inline.mode() == "off"  # strict workers never serve runs by accident


def test_a_poller_of_a_process_that_has_exited_does_not_count():
    import socket

    from hitl._core import inline

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert inline._dead_local(f"{gone.stdout.strip()}@{socket.gethostname()}")
    assert not inline._dead_local(f"{os.getpid()}@{socket.gethostname()}")
    assert not inline._dead_local("123@another-host")


# ------------------------------------------------------------------ read-your-writes, the admin path
async def test_a_returned_pause_is_already_in_postgresql_and_a_returned_decision_too(make_agent, script,
                                                                                   running_worker, db):
    model = script({"turns": [{"tool_calls": [{"name": "wipe_account", "arguments": {"account": "A-1"}}]},
                              {"content": "ok"}]})
    agent = make_agent(model, [wipe_account], db=db)
    async with running_worker():
        for _ in range(5):
            run = await agent.arun("wipe it")
            records, total = db.get_approvals(status="pending", run_id=run.run_id)
            assert run.is_paused and total == 1 and records[0]["status"] == "pending"
            run.active_requirements[0].reject(note="not today")
            run = await agent.acontinue_run(run)
            assert db.get_approval(records[0]["id"])["status"] == "rejected"


async def test_continue_without_decisions_after_the_database_decided(make_agent, script, running_worker, db):
    """Agno's admin path: update_approval, then continue_run(run_id) alone; the record in metadata, hooks run."""
    seen: list[Any] = []

    def audit_hook(run_output, agent):  # bound by name, as Agno's
        seen.append((run_output.status, (run_output.metadata or {}).get("approval", {}).get("resolved_by"), agent))

    model = script({"turns": [{"tool_calls": [{"name": "wipe_account", "arguments": {"account": "A-2"}}]},
                              {"content": "done: {results}"}]})
    agent = make_agent(model, [wipe_account], db=db, post_hooks=[audit_hook])
    async with running_worker():
        run = await agent.arun("wipe A-2")
        with pytest.raises(UnresolvedRequirementsError, match="wipe_account"):
            await agent.acontinue_run(run_id=run.run_id)
        [record], _ = db.get_approvals(run_id=run.run_id, status="pending")
        assert await db.aupdate_approval(record["id"], expected_status="pending", status="approved",
                                         resolved_by="admin@example.com") is not None
        assert await db.aupdate_approval(record["id"], expected_status="pending", status="approved") is None
        done = await agent.acontinue_run(run_id=run.run_id)
    assert done.status == RunStatus.completed and done.content == "done: wiped A-2"
    assert done.metadata["approval"]["resolved_by"] == "admin@example.com"
    assert seen == [(RunStatus.completed, "admin@example.com", agent)]


async def test_a_stale_run_output_continued_with_the_database_decision(make_agent, script, running_worker, db,
                                                                        tmp_path, monkeypatch):
    log = tmp_path / "wiped.log"
    monkeypatch.setattr(sys.modules[__name__], "WIPED_LOG", log)
    model = script({"match": "A-3", "turns": [{"tool_calls": [{"name": "wipe_account", "arguments": {"account": "A-3"}}]},
                                              {"content": "ok"}]},
                   {"match": "A-4", "turns": [{"tool_calls": [{"name": "wipe_account", "arguments": {"account": "A-4"}}]},
                                              {"content": "ok"}]})
    agent = make_agent(model, [wipe_account], db=db)
    async with running_worker():
        first, second = await agent.arun("wipe A-3"), await agent.arun("wipe A-4")
        [r1], _ = db.get_approvals(run_id=first.run_id)
        [r2], _ = db.get_approvals(run_id=second.run_id)
        await db.aupdate_approval(r1["id"], status="approved", resolved_by="admin")
        await db.aupdate_approval(r2["id"], status="rejected", resolved_by="admin")
        first.active_requirements[0].confirm()  # the same decisions, on the stale objects
        second.active_requirements[0].reject(note="no")
        assert (await agent.acontinue_run(first)).status == RunStatus.completed
        assert (await agent.acontinue_run(second)).status == RunStatus.completed
        third = await agent.arun("wipe A-3")
        [r3], _ = db.get_approvals(run_id=third.run_id)
        await db.aupdate_approval(r3["id"], status="rejected", resolved_by="admin")
        third.active_requirements[0].confirm()  # disagrees with the database: refused, the tool never runs
        with pytest.raises(RequirementAlreadyResolvedError):
            await agent.acontinue_run(third)
    assert log.read_text().splitlines() == ["wiped A-3"]


# ------------------------------------------------------------------ keywords, hooks, streaming, printing
async def test_description_expected_output_and_markdown_reach_the_system_message(make_agent, script, running_worker,
                                                                                   model_server):
    model = script({"turns": [{"content": "fine"}]})
    agent = make_agent(model, [], description="You are the night clerk.", instructions=["Be brief.", "Be kind."],
                       expected_output="One line.", markdown=True, telemetry=False)
    async with running_worker():
        assert (await agent.arun("hello")).content == "fine"
    system = model_server.requests_for(model)[-1]["messages"][0]
    assert system["role"] == "system"
    text = system["content"]
    assert text.index("night clerk") < text.index("Be brief.\nBe kind.") < text.index("<expected_output>")
    assert text.endswith("Use markdown to format your answers.")


async def test_pre_hooks_change_the_input_and_a_failing_hook_is_logged_not_raised(make_agent, script, running_worker,
                                                                                   caplog):
    def shout(run_input):
        run_input.input_content = run_input.input_content.upper()

    def broken(run_output):
        raise RuntimeError("hook broke")

    model = script({"match": "HELLO", "turns": [{"content": "heard you"}]}, {"turns": [{"content": "quiet"}]})
    agent = make_agent(model, [], pre_hooks=[shout], post_hooks=[broken])
    async with running_worker():
        assert (await agent.arun("hello")).content == "heard you"
    assert "post-hook" in caplog.text and "hook broke" in caplog.text


async def test_streamed_runs_yield_agnos_events(make_agent, script, running_worker):
    model = script({"turns": [{"content": "thinking", "tool_calls": [{"name": "wipe_account",
                                                                      "arguments": {"account": "A-5"}}]},
                              {"content": "all wiped"}]})
    agent = make_agent(model, [wipe_account])
    async with running_worker():
        events = [e async for e in agent.arun("wipe A-5", stream=True)]
        paused = [e for e in events if e.is_paused]
        assert len(paused) == 1 and isinstance(paused[0], RunPausedEvent)
        paused[0].active_requirements[0].confirm()
        after = [e async for e in agent.acontinue_run(run_id=paused[0].run_id, requirements=paused[0].requirements,
                                                      stream=True)]
    before = [e.content for e in events if isinstance(e, RunContentEvent)]
    pieces = [e.content for e in after if isinstance(e, RunContentEvent)]
    # This process serves the run: the text comes as the model writes it, in pieces, then nothing twice.
    assert "".join(before) == "thinking" and len(before) > 1
    assert "".join(pieces) == "all wiped" and len(pieces) > 1
    assert not any(e.is_paused for e in after)


def test_sync_stream_and_print_response_show_the_pause(make_agent, script, task_queue, capsys):
    """The sync API from plain code (no event loop of the caller's), a worker on hitl's own loop."""
    from hitl import worker
    from hitl._core import client as _client
    from hitl._core import sync as _sync
    from hitl.settings import Settings

    model = script({"turns": [{"tool_calls": [{"name": "wipe_account", "arguments": {"account": "A-6"}}]},
                              {"content": "ok"}]})
    agent = make_agent(model, [wipe_account])

    async def make() -> Any:
        return worker.create_worker(await _client.connect(Settings.from_env()), task_queue)

    w = _sync.run_sync(make())
    serving = asyncio.run_coroutine_threadsafe(w.run(), _sync._background_loop())
    try:
        events = list(agent.run("wipe A-6", stream=True))
        assert events[-1].is_paused and events[-1].requirements[0].tool_execution.tool_args == {"account": "A-6"}
        capsys.readouterr()
        agent.print_response("wipe A-6")
        printed = capsys.readouterr().out
        assert "Run Paused" in printed and "wipe_account" in printed and "A-6" in printed
        agent.print_response("wipe A-6", stream=True, user_id="u-1")
        streamed = capsys.readouterr().out
        assert "Run Paused" in streamed and "wipe_account" in streamed
    finally:
        _sync.run_sync(w.shutdown())
        serving.result(timeout=30)


# ------------------------------------------------------------------ sessions, dependencies, history
async def test_session_state_dependencies_and_history(make_agent, script, running_worker, db, model_server):
    model = script({"match": "apples", "turns": [{"tool_calls": [{"name": "add_to_basket", "arguments": {"item": "apples"}}]},
                                                 {"content": "Basket: {results}"}]},
                   {"match": "what", "turns": [{"content": "you bought apples"}]})
    agent = make_agent(model, [add_to_basket], db=db, session_state={"basket": []},
                       instructions="The basket holds {basket}.", add_history_to_context=True)
    async with running_worker():
        run = await agent.arun("buy apples", dependencies={"token": "t-123"})
        assert agent.session_id is not None and run.session_id == agent.session_id  # sticky
        assert agent.get_session_state() == {"basket": []}
        run.active_requirements[0].confirm()
        run = await agent.acontinue_run(run)
        assert run.content == "Basket: added apples; basket ['apples']; token t-123"
        assert agent.get_session_state() == {"basket": ["apples"]}
        await agent.arun("what did I buy?")
    last = model_server.requests_for(model)[-1]["messages"]
    assert last[0] == {"role": "system", "content": "The basket holds ['apples']."}
    assert [m["role"] for m in last[1:]] == ["user", "assistant", "user"]
    assert last[1]["content"] == "buy apples" and last[2]["content"].startswith("Basket: added apples")


async def test_a_run_decided_over_rest_joins_its_sessions_history(make_agent, script, running_worker, db, service,
                                                                  model_server):
    """A run completed by a REST decision is in the session's history for the next run; its record was settled
    before the answer (read-your-writes on the service)."""
    model = script({"match": "wipe", "turns": [{"tool_calls": [{"name": "wipe_account", "arguments": {"account": "A-9"}}]},
                                               {"content": "wiped it"}]},
                   {"match": "what", "turns": [{"content": "you wiped A-9"}]})
    agent = make_agent(model, [wipe_account], db=db, add_history_to_context=True, session_id="s-rest")
    token = service.token("alice")
    async with running_worker(), service.client(token) as alice:
        run = await agent.arun("wipe A-9")
        approval_id = f"{run.run_id}/{run.requirements[0].id}"
        r = await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
        assert r.status_code == 200 and r.json()["run"]["status"] == "completed", r.text
        assert db.get_approval(approval_id)["status"] == "approved"  # settled before the answer
        await agent.arun("what did I do?")
    last = model_server.requests_for(model)[-1]["messages"]
    assert [m["content"] for m in last if m["role"] != "system"] == ["wipe A-9", "wiped it", "what did I do?"]


async def test_guardrails_stop_a_run_as_agnos_do(make_agent, script, running_worker, model_server):
    """A pre-hook's InputCheckError: the run never starts (status error, the message as content); a
    post-hook's OutputCheckError: the caller gets an error for a run that completed."""
    from hitl.exceptions import CheckTrigger, InputCheckError, OutputCheckError

    def no_secrets(run_input):
        if "password" in run_input.input_content:
            raise InputCheckError("no passwords here", check_trigger=CheckTrigger.PII_DETECTED)

    def no_shouting(run_output):
        if run_output.content and run_output.content.isupper():
            raise OutputCheckError("the answer shouts")

    model = script({"match": "loud", "turns": [{"content": "HELLO"}]}, {"turns": [{"content": "hello"}]})
    agent = make_agent(model, [], pre_hooks=[no_secrets], post_hooks=[no_shouting])
    async with running_worker():
        refused = await agent.arun("my password is hunter2")
        assert refused.status == RunStatus.error and refused.content == "no passwords here"
        assert not [r for r in model_server.requests_for(model)]  # the model was never asked
        loud = await agent.arun("be loud")
        assert loud.status == RunStatus.error and loud.error == "the answer shouts" and loud.content == "HELLO"
        assert (await agent.aget_run(loud.run_id)).status == RunStatus.completed  # the durable run did complete
        assert (await agent.arun("be quiet")).status == RunStatus.completed


def test_a_tool_changing_session_state_never_changes_another_sessions_defaults(db, monkeypatch):
    from hitl._core import sessions as _sessions

    agent = Agent(OpenAIChat("m-state", base_url="http://127.0.0.1:9/v1"), name=f"state-{uuid.uuid4().hex[:6]}",
                  db=db, session_state={"books": []})
    alice = _sessions.state(agent, "s-alice")
    alice["books"].append("dune")
    _sessions.save_state(agent, "s-alice", alice)
    assert _sessions.state(agent, "s-bob") == {"books": []} and agent.session_state == {"books": []}
    assert _sessions.state(agent, "s-alice") == {"books": ["dune"]}


def test_auto_serves_only_a_scripts_own_agents_and_never_where_decisions_are_signed():
    from hitl._core import inline
    from hitl.security import signing
    from hitl.security.signing import Signer

    imported = Agent(OpenAIChat("m-auto", base_url="http://127.0.0.1:9/v1"), name=f"imp-{uuid.uuid4().hex[:6]}")
    assert not inline._serves(imported, "auto")  # defined by a module, not by the script being run
    assert inline._serves(imported, "on") and not inline._serves(imported, "off")
    scripted = Agent(OpenAIChat("m-auto", base_url="http://127.0.0.1:9/v1"), name=f"scr-{uuid.uuid4().hex[:6]}")
    scripted._module = "__main__"
    assert inline._serves(scripted, "auto")
    signer = Signer.generate()
    scripted.signer = signer
    assert not inline._serves(scripted, "auto")  # its decisions are signed: its workers are strict
    scripted.signer = None
    saved = dict(signing.trusted())
    signing.trust([signer])
    try:
        assert not inline._serves(scripted, "auto")  # this process trusts decision keys
    finally:
        signing.trust(saved or None)


@tool(requires_confirmation=True)
def whoami(run_context: RunContext) -> str:
    """Say whose run this is."""
    return f"session={run_context.session_id} user={run_context.user_id} deps={run_context.dependencies}"


async def test_a_tool_sees_its_runs_session_and_user_on_any_worker(make_agent, script, running_worker):
    """The run's session and user reach run_context from the run itself; the caller's per-call dependencies
    only where the caller's process serves the tool (here: forgotten, as in another process)."""
    from hitl._core import context

    model = script({"turns": [{"tool_calls": [{"name": "whoami", "arguments": {}}]}, {"content": "{results}"}]})
    agent = make_agent(model, [whoami])
    async with running_worker():
        run = await agent.arun("who?", session_id="s-42", user_id="u-7", dependencies={"token": "t-secret"})
        context._contexts.clear()  # the caller's memory is gone: a new process continues the run
        run.active_requirements[0].confirm()
        done = await agent.acontinue_run(run)
    assert done.content == "session=s-42 user=u-7 deps={}"


def test_tools_changing_different_keys_of_a_session_keep_both_changes(db):
    """Two calls at once, each from the state as it was: each keeps its own key's change."""
    from hitl._core import sessions as _sessions

    agent = Agent(OpenAIChat("m-state2", base_url="http://127.0.0.1:9/v1"), name=f"state2-{uuid.uuid4().hex[:6]}",
                  db=db, session_state={"a": 0, "b": 0, "c": 1})
    first, second = _sessions.state(agent, "s-1"), _sessions.state(agent, "s-1")
    before = _sessions.state(agent, "s-1")
    first["a"] = 1
    second["b"] = 2
    del second["c"]
    _sessions.save_state(agent, "s-1", first, before)
    _sessions.save_state(agent, "s-1", second, before)
    assert _sessions.state(agent, "s-1") == {"a": 1, "b": 2, "c": 1}  # c: the default shows again once removed


async def test_the_scripted_model_keeps_responses_conversations_as_openai_does(model_server, script):
    """Agno's OpenAIResponses continues with previous_response_id and only the new items: the scripted
    server puts the earlier conversation back, so Agno itself can be run against it for comparison."""
    import openai

    model = script({"match": "stories", "turns": [{"tool_calls": [{"name": "fetch", "arguments": {"n": 2}}]},
                                                 {"content": "Got: {results}"}]})
    async with openai.AsyncOpenAI(base_url=model_server.base_url, api_key="sk-test", max_retries=0) as client:
        first = await client.responses.create(model=model, input="two stories please")
        [call] = [item for item in first.output if item.type == "function_call"]
        second = await client.responses.create(model=model, previous_response_id=first.id, input=[
            {"type": "function_call_output", "call_id": call.call_id, "output": "s1, s2"}])
    assert second.output_text == "Got: s1, s2"


async def test_a_rest_decision_on_a_run_this_table_does_not_record_answers_at_once(make_agent, script, running_worker,
                                                                                   db, service):
    """/runs/{id}/continue waits for records only of a run the service's table records."""
    import time

    model = script({"turns": [{"tool_calls": [{"name": "wipe_account", "arguments": {"account": "A-10"}}]},
                              {"content": "ok"}]})
    agent = make_agent(model, [wipe_account])  # no db: nothing of it is recorded in the service's table
    async with running_worker(), service.client(service.token("alice")) as alice:
        run = await agent.arun("wipe A-10")
        started = time.monotonic()
        r = await alice.post(f"/runs/{run.run_id}/continue",
                             json={"decisions": [{"requirement_id": run.requirements[0].id, "action": "confirm"}]})
        assert r.status_code == 200 and r.json()["status"] == "completed", r.text
        assert time.monotonic() - started < 5  # not the records' 10 s wait


def test_at_exit_the_clients_of_loops_that_no_longer_run_are_freed_while_python_is_whole():
    """asyncio.run() leaves its loop closed but referenced, with its Temporal clients: hitl frees them at exit,
    before finalization (freed during it, their native threads aborted scripts: 4 of 24 run six at a time)."""
    import asyncio

    from hitl._core import client as _client

    closed = asyncio.new_event_loop()
    closed.close()
    running = asyncio.new_event_loop()
    running.is_running = lambda: True  # type: ignore[method-assign]  # as hitl's loop thread is at exit
    _client._clients[closed] = {("x",): object()}  # type: ignore[dict-item]
    _client._clients[running] = {("y",): object()}  # type: ignore[dict-item]
    try:
        _client._forget_stopped()
        assert closed not in _client._clients and running in _client._clients
    finally:
        _client._clients.pop(running, None)
        del running.is_running
        running.close()
