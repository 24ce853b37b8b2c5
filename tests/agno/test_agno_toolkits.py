"""Agno's toolkits as its HITL cookbook uses them: ``UserControlFlowTools`` (``get_user_input``: a form the
model makes up), ``UserFeedbackTools`` (``ask_user``: questions with options), ``WikipediaTools`` and
``WebSearchTools`` (optional packages, gated by ``requires_confirmation_tools``), and the ``agent``/``team``
parameters a tool declares. Units first, then end to end on the real stack."""

from __future__ import annotations

import asyncio
import json
import sys
import types
from typing import Any

import pytest

from activities.model import _plan
from hitl import Agent, RunStatus, tool
from hitl.decisions import ProvideInput
from hitl.errors import InvalidDecisionError, InvalidInputError, RequirementAlreadyResolvedError, ToolDefinitionError
from hitl.run import RunRequirement, ToolExecution
from hitl.team import Team
from hitl.tools import Tool, Toolkit, expand_tools
from hitl.tools.user_control_flow import GetUserInputTool, UserControlFlowTools
from hitl.tools.user_feedback import AskUserOption, AskUserQuestion, UserFeedbackTools

FIELDS = [{"field_name": "to_address", "field_type": "str", "field_description": "The address to send the email to"},
          {"field_name": "copies", "field_type": "int", "field_description": "How many copies"}]
QUESTIONS = [
    {"question": "Where do you want to go?", "header": "Destination",
     "options": [{"label": "Beach", "description": "sun"}, {"label": "City", "description": "museums"}],
     "multi_select": False},
    {"question": "What do you like?", "header": "Interests",
     "options": [{"label": "Food"}, {"label": "Art"}, {"label": "Hiking"}], "multi_select": True},
]


def _tools(*objs: Any) -> dict[str, Tool]:
    return {t.name: t for t in expand_tools(objs)}


def _as_run_sends_it(plan: Any, rid: str = "req-1-call_0") -> RunRequirement:
    """The requirement the run raises for a planned call, through JSON as the client gets it."""
    return RunRequirement.model_validate_json(RunRequirement(
        id=rid, kind=plan.kind, user_input_schema=plan.user_input_schema,
        tool_execution=ToolExecution(tool_name=plan.tool_name, tool_call_id=plan.tool_call_id, arguments=plan.arguments),
    ).model_dump_json())


def _feedback_requirement(questions: list[dict[str, Any]] = QUESTIONS) -> RunRequirement:
    plan = _plan(_tools(UserFeedbackTools()), "call_0", "ask_user", json.dumps({"questions": questions}))
    return _as_run_sends_it(plan)


# ------------------------------------------------------------------------------- UserControlFlowTools


def test_user_control_flow_tools_offer_get_user_input_with_agnos_instructions():
    toolkit = UserControlFlowTools()
    assert toolkit.name == "user_control_flow_tools" and toolkit.add_instructions is True
    assert toolkit.instructions == UserControlFlowTools.DEFAULT_INSTRUCTIONS and "`get_user_input`" in toolkit.instructions
    [get_user_input] = toolkit.get_tools()
    assert isinstance(get_user_input, GetUserInputTool) and get_user_input.name == "get_user_input"
    assert get_user_input.requires_user_input and get_user_input.user_input_fields == []
    # The model sees user_input_fields: a list of dicts, with the keys explained.
    schema = get_user_input.schema
    assert schema["required"] == ["user_input_fields"] and schema["properties"]["user_input_fields"]["type"] == "array"
    assert all(k in schema["properties"]["user_input_fields"]["description"]
               for k in ("field_name", "field_type", "field_description"))
    assert UserControlFlowTools(enable_get_user_input=False).get_tools() == []
    assert [t.name for t in UserControlFlowTools(enable_get_user_input=False, all=True).get_tools()] == ["get_user_input"]
    custom = UserControlFlowTools(instructions="Ask me.", add_instructions=False)
    assert custom.instructions == "Ask me." and custom.add_instructions is False
    # The method stays callable, as in Agno.
    assert toolkit.get_user_input([]) == "User input received"


def test_get_user_input_plans_a_pause_whose_schema_is_the_models_fields():
    tools = _tools(UserControlFlowTools())
    plan = _plan(tools, "call_0", "get_user_input", json.dumps({"user_input_fields": FIELDS}))
    assert plan.kind == "user_input" and plan.invalid is None
    assert plan.arguments == {"user_input_fields": FIELDS}  # Agno's tool_args: the model's arguments
    assert [(f.name, f.field_type, f.description, f.value) for f in plan.user_input_schema or []] == [
        ("to_address", str, "The address to send the email to", None), ("copies", int, "How many copies", None)]
    # A type Agno does not map reads as str, as in Agno; a missing description is None.
    odd = _plan(tools, "c", "get_user_input", json.dumps({"user_input_fields": [{"field_name": "when", "field_type": "date"}]}))
    [field] = odd.user_input_schema or []
    assert field.field_type is str and field.description is None
    # No fields: nothing to ask, the tool runs at once and answers as Agno's does.
    empty = _plan(tools, "c", "get_user_input", json.dumps({"user_input_fields": []}))
    assert empty.kind is None and empty.invalid is None
    assert asyncio.run(tools["get_user_input"].invoke(empty.arguments)) == "User input received"


@pytest.mark.parametrize("fields, problem", [
    ([{"field_type": "str"}], "user_input_fields[0] has no field_name"),
    ([{"field_name": "a"}, {"field_name": "a"}], "'a' is asked twice"),
    ([{"field_name": "user_input_fields"}], "'user_input_fields' cannot name a field"),
    ("to_address", "user_input_fields: Input should be a valid list"),
])
def test_get_user_input_calls_that_make_no_form_are_told_to_the_model(fields, problem):
    plan = _plan(_tools(UserControlFlowTools()), "c", "get_user_input", json.dumps({"user_input_fields": fields}))
    assert plan.kind is None and plan.invalid is not None and problem in plan.invalid
    assert plan.invalid.startswith("The call was not made")


def test_get_user_input_answers_are_the_values_given_as_agno_words_them():
    [t] = UserControlFlowTools().get_tools()
    assert t.validate_arguments({"to_address": "ann@example.org", "copies": 2}, context="c") == {
        "to_address": "ann@example.org", "copies": 2}
    assert asyncio.run(t.invoke({"to_address": "ann@example.org", "copies": 2})) == (
        'User inputs retrieved: [{"name": "to_address", "value": "ann@example.org"}, {"name": "copies", "value": 2}]')
    assert asyncio.run(t.invoke({"city": "Zürich"})) == 'User inputs retrieved: [{"name": "city", "value": "Zürich"}]'


def test_a_get_user_input_requirement_is_decided_by_assigning_values():
    plan = _plan(_tools(UserControlFlowTools()), "call_0", "get_user_input", json.dumps({"user_input_fields": FIELDS}))
    req = _as_run_sends_it(plan)
    assert req.needs_user_input and not req.needs_user_feedback and req.pause_type == "user_input"
    assert req.user_feedback_schema is None and req.tool_execution.tool_args == {"user_input_fields": FIELDS}
    for field in req.user_input_schema or []:
        field.value = "ann@example.org" if field.name == "to_address" else "2"
    decision = req.implied_decision()
    assert isinstance(decision, ProvideInput) and decision.value == {"to_address": "ann@example.org", "copies": "2"}


def test_get_user_input_takes_no_other_human_step():
    with pytest.raises(ToolDefinitionError, match="get_user_input"):
        UserControlFlowTools(requires_confirmation_tools=["get_user_input"]).get_tools()
    with pytest.raises(ToolDefinitionError, match="asks a person already"):
        GetUserInputTool(UserControlFlowTools().get_user_input, requires_confirmation=True)


# ---------------------------------------------------------------------------------- UserFeedbackTools


def test_user_feedback_tools_offer_ask_user_with_agnos_question_models():
    toolkit = UserFeedbackTools()
    assert toolkit.name == "user_feedback_tools" and toolkit.instructions == UserFeedbackTools.DEFAULT_INSTRUCTIONS
    assert "`ask_user`" in toolkit.instructions and toolkit.add_instructions is True
    [ask_user] = toolkit.get_tools()
    assert ask_user.name == "ask_user" and ask_user.requires_user_input
    schema = ask_user.schema
    assert schema["required"] == ["questions"]
    assert schema["properties"]["questions"]["items"] == {"$ref": "#/$defs/AskUserQuestion"}
    question = schema["$defs"]["AskUserQuestion"]
    assert set(question["properties"]) == {"question", "header", "options", "multi_select"}
    assert set(question["required"]) == {"question", "header", "options"}
    assert set(schema["$defs"]["AskUserOption"]["properties"]) == {"label", "description"}
    q = AskUserQuestion(question="Where?", header="Dest", options=[AskUserOption(label="Beach")])
    assert q.multi_select is False and q.options[0].description is None
    assert toolkit.ask_user([]) == "User feedback received"


def test_ask_user_pauses_with_a_user_feedback_requirement():
    req = _feedback_requirement()
    assert req.kind == "user_input" and req.needs_user_feedback and not req.needs_user_input
    assert not req.needs_confirmation and req.pause_type == "user_feedback" and not req.is_resolved()
    schema = req.user_feedback_schema
    assert schema is req.user_feedback_schema  # the same objects on every read: answers are written on them
    assert [(q.question, q.header, q.multi_select, q.selected_options) for q in schema or []] == [
        ("Where do you want to go?", "Destination", False, None), ("What do you like?", "Interests", True, None)]
    first = (schema or [])[0]
    assert [(o.label, o.description, o.selected) for o in first.options or []] == [
        ("Beach", "sun", False), ("City", "museums", False)]
    assert req.tool_execution.tool_args == {"questions": [
        {**q, "options": [{"description": None, **o} for o in q["options"]]} for q in QUESTIONS]}


def test_feedback_question_classes_are_where_agno_has_them():
    from hitl.run import UserFeedbackOption, UserFeedbackQuestion
    from hitl.tools import function

    assert function.UserFeedbackQuestion is UserFeedbackQuestion and function.UserFeedbackOption is UserFeedbackOption
    q = UserFeedbackQuestion(question="Q?", header="H", options=[UserFeedbackOption(label="A", description="a")])
    assert UserFeedbackQuestion.from_dict(q.to_dict()) == q
    assert q.to_dict() == {"question": "Q?", "header": "H", "multi_select": False, "selected_options": None,
                           "options": [{"label": "A", "description": "a", "selected": False}]}


def test_provide_user_feedback_answers_and_decides_once_every_question_has_an_answer():
    req = _feedback_requirement()
    before = req.model_dump_json()
    req.provide_user_feedback({"Where do you want to go?": ["City"]})
    where, likes = req.user_feedback_schema or []
    assert where.selected_options == ["City"] and [o.selected for o in where.options or []] == [False, True]
    assert req.decision is None and not req.is_resolved()  # one question still open, as in Agno
    req.provide_user_feedback({"What do you like?": ["Food", "Art"]}, resolved_by="ann")
    assert likes.selected_options == ["Food", "Art"] and req.is_resolved()
    decision = req.decision
    assert isinstance(decision, ProvideInput) and decision.resolved_by == "ann"
    assert decision.value == {"Where do you want to go?": ["City"], "What do you like?": ["Food", "Art"]}
    assert req.implied_decision() is decision
    assert set(json.loads(req.model_dump_json())) == set(json.loads(before))  # the wire shape keeps its keys


def test_assigned_selected_options_decide_it_too():
    req = _feedback_requirement()
    for q in req.user_feedback_schema or []:
        q.selected_options = [(q.options or [])[0].label]
    assert req.is_resolved() and req.implied_decision().value == {  # type: ignore[union-attr]
        "Where do you want to go?": ["Beach"], "What do you like?": ["Food"]}


@pytest.mark.parametrize("selections, problem", [
    ({"Where to?": ["Beach"]}, "'Where to?' is not one of the questions asked"),
    ({"Where do you want to go?": ["Moon"]}, "'Moon' is not an option of 'Where do you want to go?'"),
    ({"Where do you want to go?": ["Beach", "City"]},
     "'Where do you want to go?' takes one option (it is not multi_select)"),
    ({"What do you like?": ["Art", "Art"]}, "the answer to 'What do you like?' names ['Art'] more than once"),
    ({"Where do you want to go?": "Beach"}, "the answer to 'Where do you want to go?' must be a list of option labels"),
    (["Beach"], "selections must be a dict"),
])
def test_provide_user_feedback_refuses_what_does_not_answer_the_questions(selections, problem):
    req = _feedback_requirement()
    with pytest.raises(InvalidDecisionError, match=r"requirement 'req-1-call_0' \(ask_user\): provide_user_feedback\(\) "
                                                   r"refused: " + _escape(problem)):
        req.provide_user_feedback(selections)
    assert all(q.selected_options is None for q in req.user_feedback_schema or []) and req.decision is None


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_an_empty_answer_is_an_answer_and_multi_select_takes_several():
    req = _feedback_requirement()
    req.provide_user_feedback({"Where do you want to go?": [], "What do you like?": ["Food", "Hiking"]})
    decision = req.decision
    assert isinstance(decision, ProvideInput)
    assert decision.value == {"Where do you want to go?": [], "What do you like?": ["Food", "Hiking"]}


def test_provide_user_feedback_applies_to_feedback_requirements_only():
    plan = _plan(_tools(UserControlFlowTools()), "call_0", "get_user_input", json.dumps({"user_input_fields": FIELDS}))
    with pytest.raises(InvalidDecisionError, match=r"needs user_input; provide_user_feedback\(\) answers an ask_user"):
        _as_run_sends_it(plan).provide_user_feedback({"to_address": ["x"]})
    resolved = _feedback_requirement()
    resolved.resolution = "input_provided"
    with pytest.raises(RequirementAlreadyResolvedError):
        resolved.provide_user_feedback({"Where do you want to go?": ["Beach"]})


def test_a_resolved_questionnaire_shows_the_answers_the_run_recorded():
    req = _feedback_requirement()
    schema = req.user_input_schema or []
    for f in schema:
        if f.name == "Where do you want to go?":
            f.value = ["Beach"]
        elif f.name == "What do you like?":
            f.value = ["Art"]
    recorded = RunRequirement.model_validate_json(req.model_copy(update={"resolution": "input_provided"}).model_dump_json())
    where, likes = recorded.user_feedback_schema or []
    assert where.selected_options == ["Beach"] and [o.selected for o in where.options or []] == [True, False]
    assert likes.selected_options == ["Art"] and recorded.is_resolved()


@pytest.mark.parametrize("questions, problem", [
    ([{**QUESTIONS[0]}, {**QUESTIONS[0]}], "is asked twice"),
    ([{**QUESTIONS[0], "question": "questions"}], "'questions' cannot be a question"),
    ([{**QUESTIONS[0], "options": [{"label": "A"}, {"label": "A"}]}], "the options ['A'] appear twice"),
    ([{"question": "Where?"}], "questions.0.header: Field required"),
])
def test_ask_user_calls_that_make_no_questionnaire_are_told_to_the_model(questions, problem):
    plan = _plan(_tools(UserFeedbackTools()), "c", "ask_user", json.dumps({"questions": questions}))
    assert plan.kind is None and plan.invalid is not None and problem in plan.invalid


def test_ask_user_checks_the_answers_against_the_questions_on_the_worker():
    [t] = UserFeedbackTools().get_tools()
    plan = _plan({"ask_user": t}, "c", "ask_user", json.dumps({"questions": QUESTIONS}))
    answered = {**plan.arguments, "Where do you want to go?": ["Beach"], "What do you like?": ["Art", "Food"]}
    assert t.validate_arguments(answered, context="c") == answered
    assert asyncio.run(t.invoke(answered)) == (
        'User feedback received: [{"question": "Where do you want to go?", "selected": ["Beach"]}, '
        '{"question": "What do you like?", "selected": ["Art", "Food"]}]')
    with pytest.raises(InvalidDecisionError, match=r"'Moon' is not an option"):
        t.validate_arguments({**answered, "Where do you want to go?": ["Moon"]}, context="c")
    with pytest.raises(InvalidDecisionError, match=r"have no answer"):
        t.validate_arguments({**plan.arguments, "What do you like?": []}, context="c")
    with pytest.raises(InvalidInputError, match=r"takes one option"):
        asyncio.run(t.invoke({**answered, "Where do you want to go?": ["Beach", "City"]}))
    empty = _plan({"ask_user": t}, "c", "ask_user", json.dumps({"questions": []}))
    assert empty.kind is None and asyncio.run(t.invoke(empty.arguments)) == "User feedback received"


# -------------------------------------------------------------------- WikipediaTools and WebSearchTools


class _Disambiguation(Exception):
    def __init__(self, title: str, options: list[str]) -> None:
        super().__init__(f"{title} may refer to {options}")
        self.options = options


@pytest.fixture
def fake_wikipedia(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """A stand-in ``wikipedia`` package (no network here): what it was asked, in order."""
    calls: list[tuple[str, bool]] = []
    module = types.ModuleType("wikipedia")
    exceptions = types.ModuleType("wikipedia.exceptions")
    exceptions.DisambiguationError = _Disambiguation  # type: ignore[attr-defined]

    def summary(query: str, auto_suggest: bool = True) -> str:
        calls.append((query, auto_suggest))
        if query == "Mercury":
            raise _Disambiguation(query, ["Mercury (planet)", "Mercury (element)"])
        if query == "nothing":
            raise LookupError("no page")
        return f"{query} is a programming language."

    module.summary = summary  # type: ignore[attr-defined]
    module.exceptions = exceptions  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wikipedia", module)
    monkeypatch.setitem(sys.modules, "wikipedia.exceptions", exceptions)
    return calls


@pytest.fixture
def fake_ddgs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """A stand-in ``ddgs`` package: (kind, DDGS's options, the search's) of each search."""
    calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    class DDGS:
        def __init__(self, **options: Any) -> None:
            self.options = options

        def __enter__(self) -> DDGS:
            return self

        def __exit__(self, *exc: Any) -> None:
            return None

        def text(self, **kwargs: Any) -> list[dict[str, str]]:
            calls.append(("text", self.options, kwargs))
            return [{"title": "Apple", "href": "https://example.com", "body": "AAPL 190 €"}]

        def news(self, **kwargs: Any) -> list[dict[str, str]]:
            calls.append(("news", self.options, kwargs))
            return [{"title": "News", "url": "https://example.com/n"}]

    module = types.ModuleType("ddgs")
    module.DDGS = DDGS  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ddgs", module)
    return calls


def test_without_their_packages_the_toolkits_say_which_to_install(monkeypatch: pytest.MonkeyPatch):
    from hitl.tools.websearch import WebSearchTools
    from hitl.tools.wikipedia import WikipediaTools

    monkeypatch.setitem(sys.modules, "wikipedia", None)  # import wikipedia raises ImportError
    monkeypatch.setitem(sys.modules, "ddgs", None)
    with pytest.raises(ImportError, match=r"WikipediaTools needs the `wikipedia` package.*pip install wikipedia"):
        WikipediaTools()
    with pytest.raises(ImportError, match=r"WebSearchTools needs the `ddgs` package.*pip install ddgs"):
        WebSearchTools()


def test_wikipedia_tools_shape_and_answers(fake_wikipedia):
    from hitl.tools.wikipedia import WikipediaTools

    toolkit = WikipediaTools(requires_confirmation_tools=["search_wikipedia"])
    assert toolkit.name == "wikipedia_tools"
    [search] = toolkit.get_tools()
    assert search.name == "search_wikipedia" and search.requires_confirmation is True
    assert search.schema == {"type": "object", "required": ["query"],
                             "properties": {"query": {"type": "string", "description": "What to search for."}}}
    assert not WikipediaTools().get_tools()[0].requires_confirmation
    assert json.loads(asyncio.run(search.invoke({"query": "Python"}))) == {
        "name": "Python", "meta_data": {}, "content": "Python is a programming language."}
    assert json.loads(asyncio.run(search.invoke({"query": "Mercury"}))) == {
        "disambiguation": "Mercury", "options": ["Mercury (planet)", "Mercury (element)"]}
    assert json.loads(asyncio.run(search.invoke({"query": "nothing"}))) == {"error": "no page"}
    asyncio.run(WikipediaTools(auto_suggest=False).get_tools()[0].invoke({"query": "Python"}))
    assert fake_wikipedia[-1] == ("Python", False)
    with pytest.raises(ToolDefinitionError, match="knowledge"):
        WikipediaTools(knowledge=object())


def test_web_search_tools_shape_and_answers(fake_ddgs):
    from hitl.tools.websearch import WebSearchTools

    toolkit = WebSearchTools(requires_confirmation_tools=["web_search"])
    assert toolkit.name == "websearch"
    tools = {t.name: t for t in toolkit.get_tools()}
    assert list(tools) == ["web_search", "search_news"]
    assert tools["web_search"].requires_confirmation is True and tools["search_news"].requires_confirmation is False
    for t in tools.values():
        assert t.schema["required"] == ["query"]
        assert t.schema["properties"]["max_results"]["default"] == 5 and t.schema["properties"]["max_results"]["type"] == "integer"
    assert [t.name for t in WebSearchTools(enable_news=False).get_tools()] == ["web_search"]
    assert [t.name for t in WebSearchTools(enable_search=False).get_tools()] == ["search_news"]
    with pytest.raises(ValueError, match="timelimit 'q'"):
        WebSearchTools(timelimit="q")  # type: ignore[arg-type]
    out = asyncio.run(tools["web_search"].invoke({"query": "Apple stock"}))
    assert json.loads(out)[0]["body"] == "AAPL 190 €" and "€" in out  # ensure_ascii=False, indented
    assert fake_ddgs[-1] == ("text", {"proxy": None, "timeout": 10, "verify": True},
                             {"query": "Apple stock", "max_results": 5, "backend": "auto"})
    tuned = WebSearchTools(modifier="site:example.com", fixed_max_results=2, timelimit="w", region="uk-en", proxy="p",
                           timeout=3, verify_ssl=False, backend="bing")
    assert tuned.timeout == 3
    named = {t.name: t for t in tuned.get_tools()}
    asyncio.run(named["web_search"].invoke({"query": "x", "max_results": 9}))
    assert fake_ddgs[-1] == ("text", {"proxy": "p", "timeout": 3, "verify": False},
                             {"query": "site:example.com x", "max_results": 2, "backend": "bing", "timelimit": "w",
                              "region": "uk-en"})
    asyncio.run(named["search_news"].invoke({"query": "x"}))
    assert fake_ddgs[-1][0] == "news" and fake_ddgs[-1][2]["query"] == "x"  # no modifier on news, as Agno's


# ----------------------------------------------------------------------------- agent and team injected


def test_agent_and_team_parameters_are_hidden_from_the_model_and_passed_by_invoke():
    seen: list[tuple[Any, Any]] = []

    @tool
    def whoami(agent: Agent, team: Team | None, note: str) -> str:
        """Say who runs this."""
        seen.append((agent, team))
        return note

    @tool
    def by_type(owner: Agent, note: str, leader: Team | None = None) -> str:
        """Typed Agent under another name."""
        seen.append((owner, leader))
        return note

    @tool
    def named_only(agent, note: str) -> str:  # type: ignore[no-untyped-def]
        """An untyped agent parameter."""
        seen.append((agent, None))
        return note

    for t in (whoami, by_type, named_only):
        assert list(t.schema["properties"]) == ["note"] and t.takes_agent
    assert whoami.takes_team and not whoami.takes_run_context and not named_only.takes_team
    marker_agent, marker_team = object(), object()
    assert asyncio.run(whoami.invoke({"note": "hi"}, agent=marker_agent, team=marker_team)) == "hi"
    asyncio.run(whoami.invoke({"note": "hi"}))
    asyncio.run(by_type.invoke({"note": "hi"}, agent=marker_agent))
    assert seen == [(marker_agent, marker_team), (None, None), (marker_agent, None)]
    with pytest.raises(InvalidInputError, match="agent"):  # the model cannot fill it
        asyncio.run(whoami.invoke({"note": "hi", "agent": "forged"}))


# ---------------------------------------------------------------------------------------- end to end


class EmailTools(Toolkit):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, name="EmailTools", tools=[self.send_email], **kwargs)

    def send_email(self, subject: str, body: str, to_address: str) -> str:
        """Send an email.

        Args:
            subject: The subject.
            body: The body.
            to_address: The address.
        """
        return f"Sent email to {to_address} with subject {subject}"


def _tool_messages(model_server: Any, model: str) -> list[str]:
    last = model_server.requests_for(model)[-1]
    return [m["content"] for m in last["messages"] if m.get("role") == "tool"]


async def test_agno_user_input_example_end_to_end(make_agent, script, running_worker, model_server):
    """Agno's user_input.py: get_user_input pauses with the model's fields; the values assigned are what the model
    reads, and its next call uses them."""
    model = script({"turns": [
        {"tool_calls": [{"name": "get_user_input", "arguments": {"user_input_fields": FIELDS}}]},
        {"tool_calls": [{"name": "send_email", "arguments": {"subject": "Weather", "body": "Tokyo?",
                                                             "to_address": "{results}"}}]},
        {"content": "Done: {results}"}]})
    agent = make_agent(model, [EmailTools(), UserControlFlowTools()])
    async with running_worker():
        run_response = await agent.arun("Send an email with the body 'What is the weather in Tokyo?'")
        assert run_response.is_paused
        [requirement] = run_response.active_requirements
        assert requirement.needs_user_input and not requirement.needs_user_feedback
        assert requirement.tool_execution.tool_name == "get_user_input"
        assert [(f.name, f.field_type, f.description) for f in requirement.user_input_schema or []] == [
            ("to_address", str, "The address to send the email to"), ("copies", int, "How many copies")]
        for field in requirement.user_input_schema or []:
            if field.value is None:
                field.value = {"to_address": "ann@example.org", "copies": "2"}[field.name]
        run_response = await agent.acontinue_run(run_id=run_response.run_id, requirements=run_response.requirements)
    assert run_response.status == RunStatus.completed, run_response
    told = 'User inputs retrieved: [{"name": "to_address", "value": "ann@example.org"}, {"name": "copies", "value": "2"}]'
    assert run_response.content == f"Done: Sent email to {told} with subject Weather"
    assert told in _tool_messages(model_server, model)
    [req] = run_response.requirements
    assert req.resolution == "input_provided"
    assert {f.name: f.value for f in req.user_input_schema or []} == {"to_address": "ann@example.org", "copies": "2"}
    sent = model_server.requests_for(model)[0]["tools"]
    assert [t["function"]["name"] for t in sent] == ["send_email", "get_user_input"]
    assert list(sent[1]["function"]["parameters"]["properties"]) == ["user_input_fields"]


async def test_get_user_input_the_run_takes_the_asked_fields_only_and_all_of_them(make_agent, script, running_worker):
    """provide_user_input with a field the model did not ask, or without one it asked: refused by the run, which
    stays paused; the right answer then goes through."""
    model = script({"turns": [{"tool_calls": [{"name": "get_user_input", "arguments": {"user_input_fields": FIELDS}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [UserControlFlowTools()])
    async with running_worker():
        paused = await agent.arun("Send it")
        [req] = paused.active_requirements
        req.provide_user_input({"to_address": "a@b.c", "copies": 1, "bcc": "eve@x.org"})
        with pytest.raises(InvalidDecisionError, match=r"input for fields \['bcc'\], but only"):
            await agent.acontinue_run(paused.run_id, paused.requirements)
        again = await agent.aget_run(paused.run_id)
        [req] = again.active_requirements
        req.provide_user_input({"to_address": "a@b.c"})
        with pytest.raises(InvalidDecisionError, match=r"input is missing fields \['copies'\]"):
            await agent.acontinue_run(again.run_id, again.requirements)
        again = await agent.aget_run(paused.run_id)
        assert again.is_paused
        [req] = again.active_requirements
        req.provide_user_input({"to_address": "a@b.c", "copies": 1})
        done = await agent.acontinue_run(again.run_id, again.requirements)
    assert done.content == 'User inputs retrieved: [{"name": "to_address", "value": "a@b.c"}, {"name": "copies", "value": 1}]'


async def test_agno_user_feedback_example_end_to_end(make_agent, script, running_worker, model_server):
    """Agno's user_feedback.py: ask_user pauses with a questionnaire; provide_user_feedback answers it; the model reads
    the selections."""
    model = script({"turns": [{"tool_calls": [{"name": "ask_user", "arguments": {"questions": QUESTIONS}}]},
                              {"content": "Plan: {results}"}]})
    agent = make_agent(model, [UserFeedbackTools()], instructions=["You are a helpful travel assistant."])
    async with running_worker():
        run_response = await agent.arun("Help me plan a vacation")
        assert run_response.is_paused
        [requirement] = run_response.active_requirements
        assert requirement.needs_user_feedback and not requirement.needs_user_input
        assert requirement.pause_type == "user_feedback"
        selections = {}
        for question in requirement.user_feedback_schema or []:
            labels = [o.label for o in question.options or []]
            selections[question.question] = labels[:2] if question.multi_select else labels[1:2]
        with pytest.raises(InvalidDecisionError, match="not an option"):
            requirement.provide_user_feedback({"Where do you want to go?": ["Mars"]})
        requirement.provide_user_feedback(selections)
        assert run_response.active_requirements == []
        run_response = await agent.acontinue_run(run_id=run_response.run_id, requirements=run_response.requirements)
    assert run_response.status == RunStatus.completed, run_response
    told = ('User feedback received: [{"question": "Where do you want to go?", "selected": ["City"]}, '
            '{"question": "What do you like?", "selected": ["Food", "Art"]}]')
    assert run_response.content == f"Plan: {told}" and _tool_messages(model_server, model) == [told]
    [req] = run_response.requirements
    assert req.resolution == "input_provided" and req.needs_user_feedback
    assert [q.selected_options for q in req.user_feedback_schema or []] == [["City"], ["Food", "Art"]]


async def test_answers_that_bypass_the_client_checks_are_refused_by_the_run(make_agent, script, running_worker):
    """A raw provide_input with a label the question does not offer is refused on the worker; the run stays paused."""
    model = script({"turns": [{"tool_calls": [{"name": "ask_user", "arguments": {"questions": QUESTIONS[:1]}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [UserFeedbackTools()])
    async with running_worker():
        paused = await agent.arun("Plan a trip")
        [req] = paused.active_requirements
        req.provide_input({"Where do you want to go?": ["Beach", "City"]})
        with pytest.raises(InvalidDecisionError, match=r"takes one option"):
            await agent.acontinue_run(paused.run_id, paused.requirements)
        again = await agent.aget_run(paused.run_id)
        assert again.is_paused and [r.id for r in again.active_requirements] == [req.id]
        again.active_requirements[0].provide_user_feedback({"Where do you want to go?": ["Beach"]})
        done = await agent.acontinue_run(again.run_id, again.requirements)
    assert done.content == 'User feedback received: [{"question": "Where do you want to go?", "selected": ["Beach"]}]'


async def test_wikipedia_search_waits_for_confirmation_and_a_rejected_one_never_searches(
        make_agent, script, running_worker, fake_wikipedia):
    """Agno's confirmation_advanced.py's toolkit: requires_confirmation_tools gates search_wikipedia; rejecting it
    never calls the package, confirming calls it once."""
    from hitl.tools.wikipedia import WikipediaTools

    model = script({"turns": [{"tool_calls": [{"name": "search_wikipedia", "arguments": {"query": "python"}}]},
                              {"content": "Answer: {results}"}]})
    agent = make_agent(model, [WikipediaTools(requires_confirmation_tools=["search_wikipedia"])])
    async with running_worker():
        paused = await agent.arun("Fetch an article about python")
        [req] = paused.active_requirements
        assert req.needs_confirmation and req.tool_execution.tool_args == {"query": "python"}
        req.reject("This is not the right tool to use. Use the other tool!")
        rejected = await agent.acontinue_run(run_id=paused.run_id, requirements=paused.requirements)
        assert rejected.status == RunStatus.completed and fake_wikipedia == []
        assert "This is not the right tool to use" in (rejected.content or "")
        paused = await agent.arun("Fetch another article about python")
        paused.active_requirements[0].confirm()
        done = await agent.acontinue_run(run_id=paused.run_id, requirements=paused.requirements)
    assert fake_wikipedia == [("python", True)]
    assert json.loads((done.content or "").removeprefix("Answer: "))["content"] == "python is a programming language."


async def test_web_search_waits_for_confirmation_and_a_rejected_one_never_searches(
        make_agent, script, running_worker, fake_ddgs):
    """Agno's confirmation_toolkit.py: WebSearchTools(requires_confirmation_tools=["web_search"])."""
    from hitl.tools.websearch import WebSearchTools

    model = script({"turns": [{"tool_calls": [{"name": "web_search", "arguments": {"query": "Apple stock price"}}]},
                              {"content": "Answer: {results}"}]})
    agent = make_agent(model, [WebSearchTools(requires_confirmation_tools=["web_search"])])
    async with running_worker():
        paused = await agent.arun("What is the current stock price of Apple?")
        [req] = paused.active_requirements
        assert req.needs_confirmation and req.tool_execution.tool_args == {"query": "Apple stock price", "max_results": 5}
        req.reject()
        rejected = await agent.acontinue_run(run_id=paused.run_id, requirements=paused.requirements)
    assert rejected.status == RunStatus.completed and fake_ddgs == []


@tool
def whose(note: str, agent: Agent | None = None, team: Team | None = None) -> str:
    """Tell which agent and team run this."""
    return f"{note}: agent={agent.name if agent else None} team={team.name if team else None}"


async def test_agent_and_team_reach_the_tools_that_declare_them(make_agent, script, running_worker, model_server,
                                                              task_queue):
    """An agent's tool gets the Agent; a team's own tool gets the Team; a member's tool gets its Agent and the Team."""
    from hitl import OpenAIChat

    calls = {"turns": [{"tool_calls": [{"name": "whose", "arguments": {"note": "n"}}]}, {"content": "{results}"}]}
    agent = make_agent(script(calls), [whose])
    member = make_agent(script({"match": "^Check", **calls}), [whose], role="Checks")
    leader = script({"match": "^own", **calls},
                    {"match": "^delegate", "turns": [
                        {"tool_calls": [{"name": "delegate_task_to_member",
                                         "arguments": {"member_id": member.name, "task": "Check it"}}]},
                        {"content": "{results}"}]})
    team = Team(agents=[member], model=OpenAIChat(leader, base_url=model_server.base_url), tools=[whose],
                task_queue=task_queue, name=f"team-{member.name}")
    async with running_worker():
        alone = await agent.arun("go")
        own = await team.arun("own tool")
        delegated = await team.arun("delegate")
    assert alone.content == f"n: agent={agent.name} team=None"
    assert own.content == f"n: agent=None team={team.name}"
    assert f"n: agent={member.name} team={team.name}" in (delegated.content or "")
