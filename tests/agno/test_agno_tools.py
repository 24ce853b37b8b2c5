"""Agno's names for tools and requirements, as its HITL cookbook uses them: ``tool_execution.tool_args``,
``field.value = ...`` instead of ``provide_user_input``, every schema field given back, ``confirmation``
and the other read-only names. Units first, then end to end on the real stack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hitl import RunStatus, tool
from hitl._core.runs import decisions_of
from hitl.decisions import Confirm, ProvideInput, ProvideResult, Reject
from hitl.errors import InvalidDecisionError, ToolDefinitionError
from hitl.run import RunRequirement, ToolExecution, UserInputField
from hitl.run.base import RunContext
from hitl.tools import Toolkit, expand_tools


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
    with pytest.raises(InvalidDecisionError, match=r"requirement 'r' \(t\) needs confirmation; provide_user_feedback"):
        make("confirmation").provide_user_feedback({"Where?": ["Beach"]})


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


# --------------------------------------------------------------------------------------------- Toolkit


class EmailTools(Toolkit):
    """Agno's user_input.py toolkit: bound methods as tools, flags by name from the caller."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(name="EmailTools", tools=[self.send_email, self.get_emails], *args, **kwargs)  # noqa: B026
        self.sent: list[str] = []

    def send_email(self, subject: str, body: str, to_address: str) -> str:
        """Send an email to the given address with the given subject and body.

        Args:
            subject (str): The subject of the email.
            body (str): The body of the email.
            to_address (str): The address to send the email to.
        """
        self.sent.append(to_address)
        return f"Sent email to {to_address} with subject {subject} and body {body}"

    def get_emails(self, date_from: str, date_to: str) -> str:
        """Get all emails between the given dates.

        Args:
            date_from (str): The start date (in YYYY-MM-DD format).
            date_to (str): The end date (in YYYY-MM-DD format).
        """
        return f"2 emails between {date_from} and {date_to}"


class DeployTools(Toolkit):
    """@tool on methods in the class body, bound to the toolkit when it is made."""

    def __init__(self, env: str, **kwargs: Any) -> None:
        self.env = env
        super().__init__(name="DeployTools", tools=[self.deploy, self.status], **kwargs)

    @tool(requires_confirmation=True)
    def deploy(self, service: str) -> str:
        """Deploy a service.

        Args:
            service: Which one.
        """
        return f"deployed {service} to {self.env}"

    @tool
    async def status(self, service: str) -> str:
        """A service's status."""
        return f"{service} is up in {self.env}"


def test_toolkit_tools_are_its_bound_methods_with_flags_by_name():
    """Bound methods become tools without self; requires_confirmation_tools and external_execution_required_tools
    flag them; include_tools and exclude_tools filter."""
    kit = EmailTools(requires_confirmation_tools=["send_email"])
    by_name = {t.name: t for t in expand_tools([kit])}
    assert list(by_name) == ["send_email", "get_emails"] and list(kit.functions) == list(by_name)
    assert by_name["send_email"].requires_confirmation is True and by_name["get_emails"].requires_confirmation is False
    assert list(by_name["send_email"].schema["properties"]) == ["subject", "body", "to_address"]
    assert by_name["send_email"].schema["properties"]["subject"]["description"] == "The subject of the email."
    assert by_name["send_email"].entrypoint(subject="s", body="b", to_address="x@y.z").startswith("Sent email to x@y.z")
    assert kit.sent == ["x@y.z"]
    external = {t.name: t for t in EmailTools(external_execution_required_tools=["get_emails"]).get_tools()}
    assert external["get_emails"].external_execution and not external["send_email"].external_execution
    assert [t.name for t in EmailTools(include_tools=["get_emails"]).get_tools()] == ["get_emails"]
    assert [t.name for t in EmailTools(exclude_tools=["get_emails"]).get_tools()] == ["send_email"]


def test_tool_decorated_methods_are_bound_to_their_toolkit():
    """@tool in the class body: self is not in the schema; the toolkit binds it; the decorator's flags stay."""
    import asyncio

    staging, production = DeployTools("staging"), DeployTools("production")
    deploy = staging.functions["deploy"]
    assert list(deploy.schema["properties"]) == ["service"] and deploy.requires_confirmation is True
    assert deploy.entrypoint(service="api") == "deployed api to staging"
    assert production.functions["deploy"].entrypoint(service="api") == "deployed api to production"
    assert staging.functions["status"].is_async
    assert asyncio.run(staging.functions["status"].invoke({"service": "api"})) == "api is up in staging"
    assert DeployTools("x", requires_confirmation_tools=["status"]).functions["status"].requires_confirmation is True


def test_toolkit_refuses_names_it_does_not_have_and_unknown_keywords():
    """A flag or filter naming no tool is a ToolDefinitionError naming it; so is a keyword nobody has."""
    for option in ("include_tools", "exclude_tools", "requires_confirmation_tools", "external_execution_required_tools"):
        with pytest.raises(ToolDefinitionError, match=rf"{option} names \['send_mail'\].*send_email"):
            expand_tools([EmailTools(**{option: ["send_mail"]})])
    with pytest.raises(ToolDefinitionError, match=r"unknown keyword\(s\) \['requires_confirmation'\]"):
        EmailTools(requires_confirmation=["send_email"])
    with pytest.raises(ToolDefinitionError, match="choose one"):
        DeployTools("x", external_execution_required_tools=["deploy"]).get_tools()
    with pytest.raises(ToolDefinitionError, match=r"EmailTools\(\)"):
        expand_tools([EmailTools])
    kit = EmailTools(cache_results=True, show_result_tools=["get_emails"], timeout=5, id="e")
    assert kit.timeout == 5 and len(kit.get_tools()) == 2  # Agno's keywords are accepted and change nothing


def test_toolkit_register_async_tools_and_plain_tools():
    """Agno's register(), auto_register=False and async_tools; module-level tools and plain functions too."""

    def shout(text: str) -> str:
        """Shout."""
        return text.upper()

    async def ashout(text: str) -> str:
        """Shout, asynchronously."""
        return text.upper() + "!"

    kit = Toolkit(name="mixed", tools=[shout, send_email], auto_register=False)
    assert kit.get_tools() == []
    kit.register(shout)
    kit.register(send_email)
    kit.register(shout, name="yell")
    assert [t.name for t in kit.get_tools()] == ["shout", "send_email", "yell"]
    assert kit.functions["send_email"] is send_email  # a module-level tool given unchanged is that tool
    assert Toolkit(tools=[shout], async_tools=[(ashout, "shout")]).functions["shout"].is_async


async def test_toolkit_bound_methods_run_end_to_end(make_agent, script, running_worker):
    """A toolkit's methods run on the worker: the free one at once, the flagged one after a confirmation."""
    model = script({"turns": [
        {"tool_calls": [{"name": "get_emails", "arguments": {"date_from": "2026-01-01", "date_to": "2026-01-31"}},
                        {"name": "send_email", "arguments": {"subject": "Hi", "body": "Weather?", "to_address": "a@b.c"}}]},
        {"content": "{results}"}]})
    kit = EmailTools(requires_confirmation_tools=["send_email"])
    agent = make_agent(model, [kit])
    async with running_worker():
        response = await agent.arun("Send an email and get my emails")
        [req] = response.active_requirements
        assert req.needs_confirmation and req.tool_execution.tool_args["to_address"] == "a@b.c"
        assert kit.sent == []
        req.confirm()
        response = await agent.acontinue_run(response.run_id, response.requirements)
    assert response.status == RunStatus.completed
    assert response.content == ("2 emails between 2026-01-01 and 2026-01-31 | "
                                "Sent email to a@b.c with subject Hi and body Weather?")
    assert kit.sent == ["a@b.c"]


def test_bound_method_tools_have_the_same_digest_in_another_process():
    """An agent's definition digest covers its tools' code: a toolkit's bound methods give the same one in a
    fresh process (a worker elsewhere), so both agree they serve the same agent."""
    import subprocess
    import sys
    from pathlib import Path

    from hitl.agent import _tool_digest

    tools = [*EmailTools(requires_confirmation_tools=["send_email"]).get_tools(), *DeployTools("prod").get_tools()]
    here = [_tool_digest(t) for t in tools]
    code = ("import json, tests.agno.test_agno_tools as m; from hitl.agent import _tool_digest; "
            "tools = [*m.EmailTools(requires_confirmation_tools=['send_email']).get_tools(), "
            "*m.DeployTools('prod').get_tools()]; print(json.dumps([_tool_digest(t) for t in tools]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                         text=True, check=True, env={**__import__("os").environ, "PYTHONHASHSEED": "random"})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == here
    assert "EmailTools.send_email" in here[0]


# ------------------------------------------------------------------------------ UserInputField.field_type


def test_field_type_is_a_python_type_serialized_as_its_label():
    """print(field.field_type) shows <class 'str'> as in Agno; the JSON keeps the label it always had."""
    field = UserInputField(name="to_address", field_type="str", description="Where.")
    assert field.field_type is str and str(field.field_type) == "<class 'str'>" and field.type_label == "str"
    assert json.loads(field.model_dump_json()) == {"name": "to_address", "field_type": "str", "description": "Where.",
                                                   "value": None}
    assert field.model_dump()["field_type"] == "str"
    for label, kind in {"int": int, "float": float, "bool": bool, "list": list, "dict": dict}.items():
        assert UserInputField(name="x", field_type=label).field_type is kind
    other = UserInputField(name="x", field_type="list[str]")
    assert other.field_type == "list[str]" and json.loads(other.model_dump_json())["field_type"] == "list[str]"
    assert UserInputField(name="x", field_type=int).model_dump()["field_type"] == "int"
    assert UserInputField.model_validate_json(field.model_dump_json()) == field
    assert UserInputField.model_json_schema()["properties"]["field_type"] == {"title": "Field Type", "type": "string"}


async def test_a_paused_runs_fields_carry_python_types(make_agent, script, running_worker):
    """The schema of a user-input requirement read from the run: field types as Python types."""

    @tool(requires_user_input=True, user_input_fields=["count"])
    def order(item: str, count: int) -> str:
        """Order items."""
        return f"{count} x {item}"

    model = script({"turns": [{"tool_calls": [{"name": "order", "arguments": {"item": "pens"}}]}, {"content": "{results}"}]})
    agent = make_agent(model, [order])
    async with running_worker():
        response = await agent.arun("order pens")
        [req] = response.active_requirements
        types = {f.name: f.field_type for f in req.user_input_schema or []}
        assert types == {"item": str, "count": int}
        again = await agent.aget_run(response.run_id)
        assert {f.name: f.field_type for f in again.requirements[0].user_input_schema or []} == types
        for field in req.user_input_schema or []:
            if field.value is None:
                field.value = field.field_type("3")  # as an Agno caller converts what input() read
        response = await agent.acontinue_run(response.run_id, response.requirements)
    assert response.content == "3 x pens"
