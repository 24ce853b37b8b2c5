"""Agno's names for tools and requirements, as its HITL cookbook uses them: ``tool_execution.tool_args``,
``field.value = ...`` instead of ``provide_user_input``, every schema field given back, ``confirmation``
and the other read-only names. Units first, then end to end on the real stack."""

from __future__ import annotations

import json

import pytest

from hitl import RunStatus, tool
from hitl._runs import decisions_of
from hitl.decisions import Confirm, ProvideInput, ProvideResult, Reject
from hitl.errors import InvalidDecisionError
from hitl.run import RunRequirement, ToolExecution, UserInputField
from hitl.run.base import RunContext


@tool(requires_user_input=True, user_input_fields=["to_address"])
def send_email(subject: str, body: str, to_address: str) -> str:
    """Send an email.

    Args:
        subject: The subject of the email.
        body: The body of the email.
        to_address: The address to send the email to.
    """
    return f"sent {subject!r} to {to_address}"


def _input_requirement(**known: object) -> RunRequirement:
    """A paused user-input requirement as the run sends it: the model's values known, to_address asked."""
    schema = [UserInputField(name=n, field_type="str", value=known.get(n)) for n in ("subject", "body", "to_address")]
    return RunRequirement.model_validate_json(RunRequirement(
        id="req-1-call_0", kind="user_input", user_input_schema=schema,
        tool_execution=ToolExecution(tool_name="send_email", tool_call_id="call_0", arguments=dict(known)),
    ).model_dump_json())


# ---------------------------------------------------------------------------------------------- units


def test_tool_args_is_the_arguments_dict_and_is_not_serialized():
    """tool_args reads the same dict as arguments; the JSON that crosses the workflow boundary is unchanged."""
    execution = ToolExecution(tool_name="t", tool_call_id="c", arguments={"a": 1})
    assert execution.tool_args is execution.arguments and execution.tool_args == {"a": 1}
    assert json.loads(execution.model_dump_json()) == {
        "tool_name": "t", "tool_call_id": "c", "arguments": {"a": 1}, "original_arguments": None, "result": None}
    with pytest.raises(AttributeError):
        execution.tool_args = {}  # type: ignore[misc]


def test_assigned_values_of_every_asked_field_decide_the_requirement():
    """Agno's examples set field.value on the asked fields and never call provide_user_input."""
    req = _input_requirement(subject="Hi", body="Hello")
    assert not req.is_resolved() and req.implied_decision() is None
    for field in req.user_input_schema or []:
        if field.value is None:
            field.value = "ann@example.com"
    assert req.is_resolved() and req.decision is None
    implied = req.implied_decision()
    assert isinstance(implied, ProvideInput) and implied.requirement_id == req.id
    assert implied.value == {"to_address": "ann@example.com"}
    assert decisions_of([req]) == [implied]


def test_writing_back_the_models_values_is_no_change():
    """Agno's user_input_required example writes every field's value back; the model's stay as they were."""
    req = _input_requirement(subject="Hi", body="Hello")
    for field in req.user_input_schema or []:
        field.value = field.value if field.value is not None else "ann@example.com"
    assert req.implied_decision().value == {"to_address": "ann@example.com"}  # type: ignore[union-attr]


def test_assigning_a_models_field_another_value_is_refused_when_sent():
    """A known field assigned a different value: refused at continue time, naming run, requirement and field."""
    req = _input_requirement(subject="Hi", body="Hello")
    fields = {f.name: f for f in req.user_input_schema or []}
    fields["to_address"].value = "ann@example.com"
    fields["subject"].value = "Changed"
    assert req.is_resolved()  # every asked field has a value: decided, though the decision will be refused
    with pytest.raises(InvalidDecisionError, match=r"requirement 'req-1-call_0' \(send_email\): field 'subject'"):
        req.implied_decision()
    with pytest.raises(InvalidDecisionError, match=r"^run run-x, requirement 'req-1-call_0'.*field 'subject'.*model's"):
        decisions_of([req], run_id="run-x")


def test_a_partly_filled_requirement_is_not_decided():
    """With one asked field still None, nothing is implied; the run's requirements stay active."""
    schema = [UserInputField(name="date", field_type="str"), UserInputField(name="time", field_type="str")]
    req = RunRequirement(id="r", kind="user_input", user_input_schema=schema,
                         tool_execution=ToolExecution(tool_name="book", tool_call_id="c"))
    schema[0].value = "2026-12-01"
    assert not req.is_resolved() and req.implied_decision() is None and decisions_of([req]) == []


def test_a_method_decision_comes_before_assigned_values():
    """reject() (or provide_input) on a requirement whose fields were also assigned: the method's decision is sent."""
    req = _input_requirement(subject="Hi", body="Hello")
    (req.user_input_schema or [])[2].value = "ann@example.com"
    req.reject("not now")
    assert isinstance(req.implied_decision(), Reject) and decisions_of([req]) == [req.decision]


def test_provide_user_input_takes_every_schema_field_back():
    """The model's values given back unchanged are dropped; the asked field is what is sent."""
    req = _input_requirement(subject="Hi", body="Hello")
    req.provide_user_input({"subject": "Hi", "body": "Hello", "to_address": "ann@example.com"})
    assert isinstance(req.decision, ProvideInput) and req.decision.value == {"to_address": "ann@example.com"}
    assert {f.name: f.value for f in req.user_input_schema or []}["to_address"] == "ann@example.com"
    assert decisions_of([req]) == [req.decision]


def test_provide_user_input_refuses_a_changed_model_field_and_keeps_unknown_keys_for_the_run():
    """A known field with another value is refused here, naming the requirement and the field; a key that is no
    field goes to the run, which refuses it as before."""
    req = _input_requirement(subject="Hi", body="Hello")
    with pytest.raises(InvalidDecisionError, match=r"requirement 'req-1-call_0' \(send_email\).*field 'body'"):
        req.provide_user_input({"body": "Bye", "to_address": "ann@example.com"})
    assert req.decision is None and not req.is_resolved()
    req.provide_input({"to_address": "ann@example.com", "colour": "red"})
    assert req.decision.value == {"to_address": "ann@example.com", "colour": "red"}  # type: ignore[union-attr]


def test_agno_read_only_names():
    """confirmation, confirmation_note, external_execution_result, pause_type and the feedback names."""
    def make(kind: str, **fields: object) -> RunRequirement:
        fields.setdefault("tool_execution", ToolExecution(tool_name="t", tool_call_id="c"))
        return RunRequirement(id="r", kind=kind, **fields)  # type: ignore[arg-type]

    req = make("confirmation")
    assert (req.confirmation, req.confirmation_note, req.external_execution_result) == (None, None, None)
    assert req.pause_type == "confirmation" and req.member_agent_id is None
    assert req.needs_user_feedback is False and req.user_feedback_schema is None
    req.confirm()
    assert req.confirmation is True and isinstance(req.decision, Confirm)
    req.reject(note="too risky")
    assert req.confirmation is False and req.confirmation_note == "too risky"
    assert make("confirmation", resolution="confirmed").confirmation is True
    resolved = make("confirmation", resolution="rejected", rejection_reason="no")
    assert (resolved.confirmation, resolved.confirmation_note) == (False, "no")
    assert make("confirmation", resolution="expired").confirmation is False

    external = make("external_execution")
    assert external.pause_type == "external_execution" and external.confirmation is None
    external.set_external_execution_result("ok")
    assert external.external_execution_result == "ok" and isinstance(external.decision, ProvideResult)
    external.provide_result({"files": 2})
    assert external.external_execution_result == '{"files": 2}'
    done = make("external_execution", resolution="result_provided",
                tool_execution=ToolExecution(tool_name="t", tool_call_id="c", result="done"))
    assert done.external_execution_result == "done"
    assert make("user_input").pause_type == "user_input"


def test_requirement_json_is_unchanged_by_assignments_and_decisions():
    """What is remembered to tell assigned values apart is private: the wire shape keeps its keys."""
    req = _input_requirement(subject="Hi", body="Hello")
    before = set(json.loads(req.model_dump_json()))
    (req.user_input_schema or [])[2].value = "ann@example.com"
    req.provide_input({"to_address": "ann@example.com"})
    assert set(json.loads(req.model_dump_json())) == before
    assert "confirmation" not in before and "tool_args" not in json.dumps(json.loads(req.model_dump_json()))


# ---------------------------------------------------------------------------------------- end to end


def _email_script(script):  # type: ignore[no-untyped-def]
    return script({"turns": [{"tool_calls": [{"name": "send_email", "arguments": {"subject": "Hello", "body": "Hi!"}}]},
                             {"content": "{results}"}]})


async def test_agno_user_input_example_assigns_field_values(make_agent, script, running_worker):
    """Agno's user_input_required.py: print each field, fill those that are None, continue_run(run_id=, requirements=)."""
    agent = make_agent(_email_script(script), [send_email])
    async with running_worker():
        run_response = await agent.arun("Send an email with the subject 'Hello' and the body 'Hi!'")
        for requirement in run_response.active_requirements:
            if requirement.needs_user_input:
                for field in requirement.user_input_schema or []:
                    assert field.description
                    if field.value is None:
                        field.value = "ann@example.com"
                    else:
                        field.value = field.value  # the example writes every field back
        assert run_response.active_requirements == []
        run_response = await agent.acontinue_run(run_id=run_response.run_id, requirements=run_response.requirements)
    assert run_response.status == RunStatus.completed and run_response.content == "sent 'Hello' to ann@example.com"
    [req] = run_response.requirements
    assert req.resolution == "input_provided" and req.tool_execution.tool_args["to_address"] == "ann@example.com"


async def test_provide_user_input_with_every_field_runs_the_tool(make_agent, script, running_worker):
    """Agno's team examples give back every schema field, the model's too."""
    agent = make_agent(_email_script(script), [send_email])
    async with running_worker():
        response = await agent.arun("Send it")
        [req] = response.active_requirements
        req.provide_user_input({f.name: f.value or "bob@example.com" for f in req.user_input_schema or []})
        response = await agent.acontinue_run(response.run_id, response.requirements)
    assert response.content == "sent 'Hello' to bob@example.com"


async def test_a_changed_model_field_is_refused_and_the_run_stays_paused(make_agent, script, running_worker):
    """Assigning the model's field another value is refused at continue_run, naming requirement and field;
    nothing reaches the run, which is then continued with the asked field alone."""
    agent = make_agent(_email_script(script), [send_email])
    async with running_worker():
        response = await agent.arun("Send it")
        [req] = response.active_requirements
        fields = {f.name: f for f in req.user_input_schema or []}
        fields["to_address"].value = "ann@example.com"
        fields["subject"].value = "Other"
        with pytest.raises(InvalidDecisionError, match=rf"requirement {req.id!r} \(send_email\): field 'subject'"):
            await agent.acontinue_run(response.run_id, response.requirements)
        still = await agent.aget_run(response.run_id)
        assert still.is_paused and [r.id for r in still.active_requirements] == [req.id]
        fields["subject"].value = "Hello"
        response = await agent.acontinue_run(response.run_id, response.requirements)
    assert response.content == "sent 'Hello' to ann@example.com"


# ------------------------------------------------------------------------ tools: Agno's Function names


@tool(external_execution=True)
def execute_shell_command(command: str) -> str:
    """Execute a shell command (only ls is allowed here).

    Args:
        command: The command to run.
    """
    if not command.startswith("ls"):
        raise ValueError("only ls")
    return f"listing of {command[2:].strip() or '.'}: a.txt b.txt"


def test_entrypoint_runs_the_body_and_function_names_the_tool_class():
    """entrypoint(**tool_args) runs the function; hitl.tools.function has Agno's UserInputField and Function."""
    from hitl.tools import Tool
    from hitl.tools.function import Function
    from hitl.tools.function import UserInputField as AgnoUserInputField

    assert Function is Tool and AgnoUserInputField is UserInputField
    assert isinstance(execute_shell_command, Function) and execute_shell_command.name == "execute_shell_command"
    assert execute_shell_command.entrypoint(**{"command": "ls tmp"}) == "listing of tmp: a.txt b.txt"
    assert send_email.entrypoint is send_email.fn


async def test_external_execution_example_runs_the_entrypoint_itself(make_agent, script, running_worker):
    """Agno's external_tool_execution.py: the caller runs entrypoint(**tool_args) and hands the result over."""
    model = script({"turns": [{"tool_calls": [{"name": "execute_shell_command", "arguments": {"command": "ls"}}]},
                              {"content": "Result: {results}"}]})
    agent = make_agent(model, [execute_shell_command])
    async with running_worker():
        run_response = await agent.arun("What files do I have in my current directory?")
        assert run_response.is_paused
        for requirement in run_response.active_requirements:
            if requirement.needs_external_execution:
                assert requirement.tool_execution.tool_name == execute_shell_command.name
                result = execute_shell_command.entrypoint(**requirement.tool_execution.tool_args)
                requirement.set_external_execution_result(result)
                assert requirement.external_execution_result == result
        run_response = await agent.acontinue_run(run_id=run_response.run_id, requirements=run_response.requirements)
    assert run_response.content == "Result: listing of .: a.txt b.txt"


# ------------------------------------------------------------------------------------------ run_context


def test_run_context_is_hidden_from_the_model_and_passed_by_invoke():
    """A run_context parameter (by name, or typed RunContext) is not in the schema; invoke passes it when given."""
    import asyncio

    seen: list[object] = []

    @tool(requires_confirmation=True)
    def add_to_watchlist(run_context: RunContext, symbol: str) -> str:
        """Add a symbol to the watchlist.

        Args:
            symbol: The stock symbol.
        """
        seen.append(run_context)
        return f"added {symbol}"

    @tool
    def typed_otherwise(ctx: RunContext, symbol: str, context_default: str = "x") -> str:
        """Typed RunContext under another name."""
        seen.append(ctx)
        return symbol

    @tool
    def optional_context(symbol: str, run_context: RunContext | None = None) -> str:
        """A default of its own."""
        seen.append(run_context)
        return symbol

    assert add_to_watchlist.schema == {"type": "object", "required": ["symbol"], "properties": {
        "symbol": {"type": "string", "description": "The stock symbol."}}}
    assert list(typed_otherwise.schema["properties"]) == ["symbol", "context_default"]
    assert list(optional_context.schema["properties"]) == ["symbol"]
    assert add_to_watchlist.takes_run_context and not send_email.takes_run_context
    context = RunContext(run_id="run-1", session_state={"watchlist": []})
    assert asyncio.run(add_to_watchlist.invoke({"symbol": "AAPL"}, run_context=context)) == "added AAPL"
    asyncio.run(add_to_watchlist.invoke({"symbol": "AAPL"}))
    asyncio.run(typed_otherwise.invoke({"symbol": "X"}, run_context=context))
    asyncio.run(optional_context.invoke({"symbol": "X"}))
    assert seen == [context, None, context, None]
    with pytest.raises(Exception, match="run_context"):  # the model cannot fill it
        asyncio.run(add_to_watchlist.invoke({"symbol": "AAPL", "run_context": "forged"}))
    with pytest.raises(Exception, match="run_context"):
        tool(requires_user_input=True, user_input_fields=["run_context"])(add_to_watchlist.fn)


@tool
def watchlist_size(run_context: RunContext, symbol: str) -> str:
    """How many symbols the watchlist holds after adding one."""
    state = (run_context.session_state if run_context is not None else None) or {}
    return f"{symbol}: {len(state.get('watchlist', [])) + 1}"


async def test_a_tool_with_run_context_runs_on_a_worker(make_agent, script, model_server, running_worker):
    """The model is not shown run_context, and the tool runs on the worker."""
    model = script({"turns": [{"tool_calls": [{"name": "watchlist_size", "arguments": {"symbol": "AAPL"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [watchlist_size])
    async with running_worker():
        response = await agent.arun("Add AAPL")
    assert response.status == RunStatus.completed and response.content == "AAPL: 1"
    sent = model_server.requests_for(model)[0]["tools"][0]["function"]["parameters"]
    assert list(sent["properties"]) == ["symbol"]
