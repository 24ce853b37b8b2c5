"""Agno's run events, pprint and print_response for hitl runs: pure, no servers.

RunOutputs are built by hand as run/continue_run return them; the events are those Agno's
stream yields for the same leg (agno/run/agent.py, agno/run/team.py, agno/agent/_run.py 3.1.10).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from rich.console import Console

from hitl.run import RunOutput, RunRequirement, RunStatus, ToolExecution
from hitl.run import agent as A
from hitl.run import team as T
from hitl.run._events import agent_paused_content, events_for, paused_content, team_paused_content
from hitl.run._printing import aprint_run_stream, print_run, print_run_stream
from hitl.utils import pprint


def _req(rid: str, kind: str = "confirmation", tool: str = "get_top_stories", args: dict[str, Any] | None = None,
         **extra: Any) -> RunRequirement:
    return RunRequirement(id=rid, kind=kind, tool_execution=ToolExecution(
        tool_name=tool, tool_call_id=f"call-{rid}", arguments={"num_stories": 2} if args is None else args), **extra)


def _paused(*reqs: RunRequirement, content: str | None = None) -> RunOutput:
    return RunOutput(run_id="run-1", agent_name="Admin Agent", session_id="s-1", status=RunStatus.paused,
                     requirements=list(reqs), pauses=1, content=content)


def _done(content: str | None = "Two stories.", **kw: Any) -> RunOutput:
    return RunOutput(run_id="run-1", agent_name="Admin Agent", session_id="s-1", status=RunStatus.completed,
                     content=content, **kw)


def _member_req(rid: str, member: str = "Deploy Agent", kind: str = "confirmation", tool: str = "deploy") -> RunRequirement:
    return _req(f"run-1.m1/{rid}", kind, tool, {"app": "payments"}, member_agent_name=member,
                member_run_id=f"run-1.{member[:1].lower()}1")


def _console() -> Console:
    return Console(file=io.StringIO(), width=100, record=True, color_system=None)


def _names(events: list[Any]) -> list[str]:
    return [e.event for e in events]


# ----------------------------------------------------------------------------- event classes
def test_event_strings_and_common_fields() -> None:
    assert A.RunContentEvent().event == "RunContent" == A.RunEvent.run_content.value
    assert A.RunPausedEvent().event == "RunPaused"
    assert T.RunPausedEvent().event == "TeamRunPaused" == T.TeamRunEvent.run_paused.value
    assert T.RunContentEvent().event == "TeamRunContent"
    e = A.RunStartedEvent(agent_id="a", agent_name="A", run_id="r", session_id="s")
    assert (e.parent_run_id, e.content, e.is_paused, e.is_cancelled) == (None, None, False, False)
    assert isinstance(e.created_at, int)
    for cls in A.RUN_OUTPUT_EVENT_TYPES:
        assert cls().is_paused is (cls is A.RunPausedEvent)
        assert cls().is_cancelled is (cls is A.RunCancelledEvent)
    for cls in T.TEAM_RUN_OUTPUT_EVENT_TYPES:
        assert cls().is_paused is (cls is T.RunPausedEvent)
        assert cls().is_cancelled is (cls is T.RunCancelledEvent)
        assert hasattr(cls(), "team_id") and hasattr(cls(), "team_name")
    assert A.RunOutput is RunOutput and T.TeamRunOutput is RunOutput


def test_team_and_agent_paused_events_are_distinct_classes() -> None:
    from hitl.run.team import RunPausedEvent as TeamRunPausedEvent

    member, team = A.RunPausedEvent(), TeamRunPausedEvent()
    assert TeamRunPausedEvent is not A.RunPausedEvent
    assert not isinstance(member, TeamRunPausedEvent) and not isinstance(team, A.RunPausedEvent)
    assert member.is_paused and team.is_paused
    assert set(A.RUN_OUTPUT_EVENT_TYPES).isdisjoint(T.TEAM_RUN_OUTPUT_EVENT_TYPES)


def test_paused_event_requirements_and_to_dict() -> None:
    first, second = _req("r1"), _req("r2", "external_execution", "run_shell", {"command": "ls"})
    second.provide_result("file.txt")
    e = A.RunPausedEvent(run_id="run-1", requirements=[first, second], tools=[first.tool_execution])
    assert e.active_requirements == [first]
    assert e.tools_requiring_confirmation == [first.tool_execution]
    assert e.tools_awaiting_external_execution == [second.tool_execution]
    d = e.to_dict()
    assert d["event"] == "RunPaused" and d["run_id"] == "run-1" and "parent_run_id" not in d
    assert d["requirements"][0]["id"] == "r1" and d["requirements"][0]["tool_execution"]["tool_name"] == "get_top_stories"
    assert d["tools"] == [{"tool_name": "get_top_stories", "tool_call_id": "call-r1", "arguments": {"num_stories": 2}}]
    assert '"RunPaused"' in e.to_json()
    assert T.RunCancelledEvent(reason="x").to_dict()["reason"] == "x"


# ----------------------------------------------------------------------------- paused texts
def test_agent_paused_texts() -> None:
    assert agent_paused_content([_req("r1")]) == "I have tools to execute, but I need confirmation."
    assert agent_paused_content([_req("r1", "user_input")]) == "I have tools to execute, but I need user input."
    assert agent_paused_content([_req("r1", "external_execution")]) == \
        "I have tools to execute, but it needs external execution."
    # Agno's text is the last waiting call's
    assert agent_paused_content([_req("r1"), _req("r2", "user_input")]).endswith("I need user input.")
    assert agent_paused_content([]) == ""


def test_team_paused_texts() -> None:
    reqs = [_member_req("r1"), _req("r2", "external_execution", "approve_deployment")]
    assert team_paused_content(reqs) == (
        "Team run paused. The following require input:\n"
        "- Deploy Agent: deploy requires confirmation\n"
        "- team: approve_deployment requires external execution")
    assert team_paused_content([]) == "Team run paused."
    decided = _req("r3").model_copy(update={"resolution": "confirmed"})
    assert team_paused_content([decided]) == "Team run paused."
    # A run's own content wins, as in Agno; without one a member's requirement makes it a team's text
    assert paused_content(_paused(_req("r1"), content="Let me check.")) == "Let me check."
    assert paused_content(_paused(_member_req("r1"))).startswith("Team run paused.")


# ----------------------------------------------------------------------------- events_for, agents
def test_agent_stream_without_events_pause_and_completion() -> None:
    out = _paused(_req("r1"))
    events = events_for(out, team=False, continued=False, stream_events=False, name="Admin Agent")
    assert _names(events) == ["RunPaused"]
    (paused,) = events
    assert isinstance(paused, A.RunPausedEvent) and paused.is_paused
    assert paused.content == "I have tools to execute, but I need confirmation."
    assert paused.requirements is out.requirements and paused.active_requirements == out.requirements
    assert (paused.run_id, paused.session_id, paused.agent_name, paused.agent_id) == \
        ("run-1", "s-1", "Admin Agent", "admin-agent")
    assert [t.tool_name for t in paused.tools] == ["get_top_stories"]
    # deciding the event's requirement is deciding the output's
    paused.requirements[0].confirm()
    assert out.requirements[0].decision is not None and out.active_requirements == []

    done = events_for(_done(), team=False, continued=True, stream_events=False, name="Admin Agent")
    assert _names(done) == ["RunContent"] and done[0].content == "Two stories."
    assert events_for(_done(content=None), team=False, continued=False, stream_events=False, name="A") == []


def test_agent_pause_after_text_sends_the_text_first() -> None:
    events = events_for(_paused(_req("r1"), content="Checking."), team=False, continued=False,
                        stream_events=False, name="A")
    assert _names(events) == ["RunContent", "RunPaused"]
    assert events[0].content == events[1].content == "Checking."
    # a content that is already the paused text is not the model's: no RunContent for it
    same = _paused(_req("r1"), content="I have tools to execute, but I need confirmation.")
    assert _names(events_for(same, team=False, continued=False, stream_events=False, name="A")) == ["RunPaused"]


def test_agent_stream_events_start_and_continue() -> None:
    started = events_for(_paused(_req("r1")), team=False, continued=False, stream_events=True, name="A")
    assert _names(started) == ["RunStarted", "RunPaused"]
    assert isinstance(started[0], A.RunStartedEvent)

    confirmed = _req("r1").model_copy(update={"resolution": "confirmed", "confirmed": True})
    confirmed.tool_execution.result = "[story 1, story 2]"
    rejected = _req("r2", tool="delete").model_copy(update={"resolution": "rejected", "confirmed": False})
    done = _done(requirements=[confirmed, rejected])
    events = events_for(done, team=False, continued=True, stream_events=True, name="A")
    assert _names(events) == ["RunContinued", "ToolCallStarted", "ToolCallCompleted", "RunContent",
                              "RunContentCompleted", "RunCompleted"]
    assert events[1].tool.tool_name == "get_top_stories" and events[2].content == "[story 1, story 2]"
    assert events[-1].content == "Two stories." and isinstance(events[-1], A.RunCompletedEvent)
    assert all(isinstance(e, A.RUN_OUTPUT_EVENT_TYPES) for e in events)

    again = events_for(_paused(_req("r3")), team=False, continued=True, stream_events=True, name="A")
    assert _names(again) == ["RunContinued", "RunPaused"]


@pytest.mark.parametrize("stream_events", [False, True])
def test_agent_error_and_cancel_are_sent_whatever_stream_events(stream_events: bool) -> None:
    failed = RunOutput(run_id="run-1", status=RunStatus.error, error="model unreachable", content="model unreachable")
    events = events_for(failed, team=False, continued=False, stream_events=stream_events, name="A")
    assert _names(events) == (["RunStarted"] if stream_events else []) + ["RunError"]
    assert isinstance(events[-1], A.RunErrorEvent) and events[-1].content == "model unreachable"

    cancelled = RunOutput(run_id="run-1", status=RunStatus.cancelled)
    events = events_for(cancelled, team=False, continued=True, stream_events=stream_events, name="A")
    assert _names(events) == (["RunContinued"] if stream_events else []) + ["RunCancelled", "RunCompleted"]
    assert events[-2].is_cancelled and events[-2].reason == "Run run-1 was cancelled"


def test_a_run_waiting_for_a_worker_yields_no_end() -> None:
    waiting = RunOutput(run_id="run-1", status=RunStatus.running, waiting_for_worker="no worker serves A")
    assert _names(events_for(waiting, team=False, continued=False, stream_events=True, name="A")) == ["RunStarted"]
    assert events_for(waiting, team=False, continued=False, stream_events=False, name="A") == []


# ----------------------------------------------------------------------------- events_for, teams
def test_team_member_pause_yields_the_members_event_then_the_teams() -> None:
    from hitl.run.team import RunPausedEvent as TeamRunPausedEvent

    out = _paused(_member_req("r1"), _member_req("r2", "Email Agent", "external_execution", "send_email"))
    out.agent_name = "DevOps Team"
    events = events_for(out, team=True, continued=False, stream_events=False, name="DevOps Team")
    assert _names(events) == ["RunPaused", "RunPaused", "TeamRunPaused"]
    deploy, email, team = events
    assert all(e.is_paused for e in events)  # Agno code that reads only is_paused sees all three
    assert [isinstance(e, TeamRunPausedEvent) for e in events] == [False, False, True]
    assert isinstance(deploy, A.RunPausedEvent) and isinstance(email, A.RunPausedEvent)
    assert (deploy.agent_name, deploy.agent_id, deploy.run_id, deploy.parent_run_id, deploy.session_id) == \
        ("Deploy Agent", "deploy-agent", "run-1.d1", "run-1", "s-1")
    assert [r.id for r in deploy.requirements] == ["run-1.m1/r1"]
    assert deploy.content == "I have tools to execute, but I need confirmation."
    assert email.agent_name == "Email Agent" and email.content.endswith("it needs external execution.")
    assert (team.team_name, team.team_id, team.run_id, team.parent_run_id) == ("DevOps Team", "devops-team", "run-1", None)
    assert team.requirements is out.requirements
    assert [r.member_agent_name for r in team.active_requirements] == ["Deploy Agent", "Email Agent"]
    assert team.content == ("Team run paused. The following require input:\n"
                            "- Deploy Agent: deploy requires confirmation\n"
                            "- Email Agent: send_email requires external execution")


def test_team_own_tool_pause_has_no_member_event() -> None:
    out = _paused(_req("r1", tool="approve_deployment", args={"environment": "staging"}))
    events = events_for(out, team=True, continued=False, stream_events=True, name="Release Team")
    assert _names(events) == ["TeamRunStarted", "TeamRunPaused"]
    assert isinstance(events[0], T.RunStartedEvent) and isinstance(events[1], T.RunPausedEvent)
    assert events[1].content == ("Team run paused. The following require input:\n"
                                 "- team: approve_deployment requires confirmation")
    assert events[1].requirements[0].member_agent_name is None


def test_team_completion_error_and_cancel() -> None:
    done = events_for(_done("Deployed."), team=True, continued=True, stream_events=False, name="T")
    assert _names(done) == ["TeamRunContent"] and isinstance(done[0], T.RunContentEvent)
    full = events_for(_done("Deployed."), team=True, continued=True, stream_events=True, name="T")
    assert _names(full) == ["TeamRunContinued", "TeamRunContent", "TeamRunContentCompleted", "TeamRunCompleted"]
    assert all(isinstance(e, T.TEAM_RUN_OUTPUT_EVENT_TYPES) for e in full)
    assert full[-1].team_name == "T" and full[-1].content == "Deployed."
    failed = RunOutput(run_id="run-1", status=RunStatus.error, error="boom")
    assert _names(events_for(failed, team=True, continued=False, stream_events=False, name="T")) == ["TeamRunError"]
    # a continue that let a member's call and the team's own run: each told as its owner's
    member_ran = _member_req("r1").model_copy(update={"resolution": "confirmed"})
    own_ran = _req("r2", tool="approve_deployment").model_copy(update={"resolution": "input_provided"})
    events = events_for(_done("Deployed.", requirements=[member_ran, own_ran]), team=True, continued=True,
                        stream_events=True, name="T")
    assert _names(events) == ["TeamRunContinued", "ToolCallStarted", "ToolCallCompleted", "TeamToolCallStarted",
                              "TeamToolCallCompleted", "TeamRunContent", "TeamRunContentCompleted", "TeamRunCompleted"]
    assert isinstance(events[1], A.ToolCallStartedEvent) and events[1].agent_name == "Deploy Agent"
    assert events[1].parent_run_id == "run-1" and events[1].run_id == "run-1.d1"
    assert isinstance(events[3], T.ToolCallStartedEvent) and events[3].tool.tool_name == "approve_deployment"
    gone = RunOutput(run_id="run-1", status=RunStatus.cancelled, content="cancelled by policy")
    events = events_for(gone, team=True, continued=False, stream_events=False, name="T")
    assert _names(events) == ["TeamRunCancelled", "TeamRunCompleted"] and events[0].reason == "cancelled by policy"


# ----------------------------------------------------------------------------- pprint
def test_pprint_a_run_output() -> None:
    console = _console()
    pprint.pprint_run_response(_done("Here are **two** stories."), console=console)
    text = console.export_text()
    assert "Here are **two** stories." in text and text.startswith("╭") and "─" in text

    console = _console()
    pprint.pprint_run_response(_done("Here are **two** stories."), markdown=True, console=console)
    assert "Here are two stories." in console.export_text()

    console = _console()
    pprint.pprint_run_response(_paused(_req("r1")), console=console)
    assert "I have tools to execute, but I need confirmation." in console.export_text()


def test_pprint_a_run_output_goes_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    pprint.pprint_run_response(_done("Printed where Agno prints."))
    assert "Printed where Agno prints." in capsys.readouterr().out


def test_pprint_a_sync_stream_consumes_it_and_concatenates_content() -> None:
    seen: list[str] = []

    def stream() -> Any:
        for e in [A.RunStartedEvent(), A.RunContentEvent(content="Deploy "), A.RunContentEvent(content="done."),
                  _done(), A.RunContentCompletedEvent()]:
            seen.append(type(e).__name__)
            yield e

    console = _console()
    pprint.pprint_run_response(stream(), console=console)
    assert len(seen) == 5  # to the end of the stream
    assert "Deploy done." in console.export_text()

    # a team's continue: the member's pause, then the team's, each with its content
    out = _paused(_member_req("r1"))
    console = _console()
    pprint.pprint_run_response(iter(events_for(out, team=True, continued=True, stream_events=False, name="T")),
                               console=console, show_time=True)
    text = console.export_text()
    assert "I have tools to execute, but I need confirmation.Team run paused." in text
    assert "Response" in text


async def test_apprint_an_async_stream() -> None:
    async def stream() -> AsyncIterator[Any]:
        for e in events_for(_done("All **done**."), team=True, continued=True, stream_events=False, name="T"):
            yield e

    console = _console()
    await pprint.apprint_run_response(stream(), markdown=True, console=console)
    assert "All done." in console.export_text()

    console = _console()
    await pprint.apprint_run_response(_done("As one table."), console=console)
    assert "As one table." in console.export_text()


# ----------------------------------------------------------------------------- print_response
def test_print_run_completed() -> None:
    ran = _req("r1").model_copy(update={"resolution": "confirmed"})
    console = _console()
    print_run(_done("Two stories.", requirements=[ran]), message="Fetch 2 stories", markdown=False, elapsed=1.234,
              console=console)
    text = console.export_text()
    assert [t in text for t in ("Message", "Fetch 2 stories", "Tool Calls", "• get_top_stories(num_stories=2)",
                                "Response (1.2s)", "Two stories.")] == [True] * 6
    assert text.index("Message") < text.index("Tool Calls") < text.index("Response (1.2s)")
    assert "┏" in text  # Agno's heavy panels

    console = _console()
    print_run(_done("Just text."), message="Hi", markdown=True, elapsed=0.5, console=console)
    text = console.export_text()
    assert "Tool Calls" not in text and "Response (0.5s)" in text and "Just text." in text


def test_print_run_paused_lists_each_kind() -> None:
    out = _paused(_req("r1"), _req("r2", "user_input", "send_email", {"subject": "Hello"}),
                  _req("r3", "external_execution", "run_shell", {"command": "ls"}))
    console = _console()
    print_run(out, message="Do it", markdown=False, elapsed=2.0, console=console)
    text = console.export_text()
    assert "Run Paused" in text and "Response" not in text
    assert "Run is paused. The following tool calls require confirmation:" in text
    assert text.index("require confirmation:") < text.index("• get_top_stories(num_stories=2)") \
        < text.index("The following tool calls require user input:") < text.index("• send_email(subject=Hello)") \
        < text.index("The following tool calls require external execution:") < text.index("• run_shell(command=ls)")

    only_input = _paused(_req("r1", "user_input", "send_email", {}))
    console = _console()
    print_run(only_input, message="", markdown=False, elapsed=0, console=console)
    text = console.export_text()
    assert "Run is paused. The following tool calls require user input:" in text and "• send_email()" in text
    assert "Message" not in text


def test_print_run_team_pause_shows_the_team_text() -> None:
    console = _console()
    print_run(_paused(_member_req("r1")), message="Deploy", markdown=False, elapsed=1.0, console=console, team=True)
    text = console.export_text()
    assert "Response (1.0s)" in text and "Team run paused. The following require input:" in text
    assert "- Deploy Agent: deploy requires confirmation" in text and "Run Paused" not in text


def test_print_run_stream_agent_pause_and_completion() -> None:
    console = _console()
    print_run_stream(iter(events_for(_paused(_req("r1"), content="Let me fetch."), team=False, continued=False,
                                     stream_events=True, name="A")),
                     message="Fetch", markdown=False, console=console)
    text = console.export_text()
    assert "Let me fetch." in text and "Run Paused" in text and "• get_top_stories(num_stories=2)" in text
    assert "Working..." not in text

    ran = _req("r1").model_copy(update={"resolution": "confirmed"})
    console = _console()
    print_run_stream(iter(events_for(_done("Two stories.", requirements=[ran]), team=False, continued=True,
                                     stream_events=True, name="A")),
                     message="Fetch", markdown=False, console=console)
    text = console.export_text()
    assert "Tool Calls" in text and "Two stories." in text and "Response (" in text and "Run Paused" not in text


async def test_aprint_run_stream_team_pause() -> None:
    async def stream() -> AsyncIterator[Any]:
        for e in events_for(_paused(_member_req("r1")), team=True, continued=False, stream_events=False, name="T"):
            yield e

    console = _console()
    await aprint_run_stream(stream(), message="Deploy payments", markdown=False, console=console)
    text = console.export_text()
    assert "Deploy payments" in text and "Team run paused." in text
    assert "Run Paused" not in text  # the member's own pause event is not the team's display
