"""What a run looks like from outside: its status, its output and the requirements it waits on."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

import pydantic
import pydantic_core
from pydantic import BaseModel, Field, PrivateAttr

from hitl.decisions import Confirm, Decision, ProvideInput, ProvideResult, Reject, refuse_unsafe
from hitl.errors import InvalidDecisionError, RequirementAlreadyResolvedError
from hitl.policy import ApprovalPolicy
from hitl.run.base import RunContext

__all__ = ["RunContext", "RunStatus", "ToolExecution", "UserInputField", "RunRequirement", "RunOutput", "RunSummary",
           "RequirementKind", "UserFeedbackQuestion", "UserFeedbackOption"]

RequirementKind = Literal["confirmation", "user_input", "external_execution"]



def render_result(result: Any) -> str:
    """A tool's return value as the text the model reads (a dict as JSON, not Python's ``str()``)."""
    if isinstance(result, str):
        return result
    return json.dumps(pydantic_core.to_jsonable_python(result))


class RunStatus(str, Enum):
    """Where a run stands."""

    running = "running"
    paused = "paused"
    completed = "completed"
    error = "error"
    cancelled = "cancelled"

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        return self in (RunStatus.completed, RunStatus.error, RunStatus.cancelled)


class ToolExecution(BaseModel):
    """One tool call the model asked for."""

    tool_name: str
    tool_call_id: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    original_arguments: dict[str, Any] | None = None
    """The model's arguments when an approver corrected them with ``confirm(arguments=...)``."""
    result: str | None = None

    @property
    def tool_args(self) -> dict[str, Any]:
        """Agno's name for :attr:`arguments`: the same dict (``entrypoint(**tool_args)`` calls the tool with them)."""
        return self.arguments


_FIELD_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}
"""The labels a ``UserInputField`` is serialized with that read back as Python types (as Agno's ``from_dict``)."""


def field_type_label(field_type: Any) -> str:
    """The label a field type is serialized as: a class's ``__name__`` (``"str"``), any other type's text."""
    if isinstance(field_type, str):
        return field_type
    if isinstance(field_type, type):
        return field_type.__name__
    return str(field_type).replace("typing.", "")


class UserInputField(BaseModel):
    """One argument of a tool call, for a person to fill when ``value`` is None.

    ``field_type`` is a Python type as in Agno (``print(field.field_type)`` shows ``<class 'str'>``)
    for ``str``, ``int``, ``float``, ``bool``, ``list`` and ``dict``; any other type keeps its label
    (``"list[str]"``, ``"Decimal"``). It crosses the wire and the run's history as that label
    (:attr:`type_label`), so what is serialized is the same text either way.
    """

    name: str
    field_type: Annotated[Any, pydantic.WithJsonSchema({"type": "string"})]
    description: str | None = None
    value: Any = None

    @pydantic.field_validator("field_type", mode="before")
    @classmethod
    def _type_from_label(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _FIELD_TYPES.get(value, value)
        return value

    @pydantic.field_serializer("field_type")
    def _label_of_type(self, value: Any) -> str:
        return field_type_label(value)

    @property
    def type_label(self) -> str:
        """The field's type as its label (``"str"``, ``"list[str]"``): how it is serialized."""
        return field_type_label(self.field_type)


FEEDBACK_FIELD = "questions"
"""The field of a user-feedback requirement's ``user_input_schema`` that holds the model's questions
(``ask_user``'s argument, as its value); the other fields are the questions, by their text, each asked
for the labels chosen."""
FEEDBACK_FIELD_TYPE = "list[AskUserQuestion]"
"""That field's type label: with :data:`FEEDBACK_FIELD`, what marks a user-input requirement as Agno's
user-feedback questionnaire (the run raises it as user input; the client side reads it as feedback)."""


@dataclass
class UserFeedbackOption:
    """One option of a :class:`UserFeedbackQuestion` (Agno's): ``selected`` once it was chosen."""

    label: str
    description: str | None = None
    selected: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "description": self.description, "selected": self.selected}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UserFeedbackOption:
        return cls(label=data["label"], description=data.get("description"), selected=bool(data.get("selected", False)))


@dataclass
class UserFeedbackQuestion:
    """One question of a user-feedback requirement (Agno's, from ``ask_user``): pick among ``options``,
    one or (``multi_select``) several; ``selected_options`` holds the labels chosen, None until answered."""

    question: str
    header: str | None = None
    options: list[UserFeedbackOption] | None = None
    multi_select: bool = False
    selected_options: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"question": self.question, "header": self.header, "multi_select": self.multi_select,
                                "selected_options": self.selected_options}
        if self.options is not None:
            data["options"] = [o.to_dict() for o in self.options]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UserFeedbackQuestion:
        options = data.get("options")
        return cls(
            question=data["question"],
            header=data.get("header"),
            options=[o if isinstance(o, UserFeedbackOption) else UserFeedbackOption.from_dict(o) for o in options]
            if options is not None else None,
            multi_select=bool(data.get("multi_select", False)),
            selected_options=data.get("selected_options"),
        )


def feedback_problem(questions: list[UserFeedbackQuestion], selections: Any) -> str | None:
    """Why ``selections`` (question text -> labels chosen) cannot answer ``questions``, or None.

    Refused: not a dict of lists of labels; a question that is not asked; a label that is not one of
    its question's options, or given twice; more than one label for a question that is not
    ``multi_select``. An empty list (nothing chosen) is an answer. Questions left out are not checked here.
    """
    if not isinstance(selections, dict):
        return f"selections must be a dict of question -> list of option labels, got {type(selections).__name__}"
    by_text = {q.question: q for q in questions}
    for text, labels in selections.items():
        q = by_text.get(text)
        if q is None:
            return f"{text!r} is not one of the questions asked ({list(by_text)})"
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            return f"the answer to {text!r} must be a list of option labels, got {labels!r}"
        offered = [o.label for o in q.options or []]
        for label in labels:
            if label not in offered:
                return f"{label!r} is not an option of {text!r} (its options are {offered})"
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            return f"the answer to {text!r} names {twice} more than once"
        if not q.multi_select and len(labels) > 1:
            return f"{text!r} takes one option (it is not multi_select), got {labels}"
    return None


class RunRequirement(BaseModel):
    """A tool call that waits for a person or another service.

    Decide it with :meth:`confirm`, :meth:`reject`, :meth:`provide_input` or
    :meth:`provide_result`, then pass it to ``Agent.continue_run``.
    """

    id: str
    kind: RequirementKind
    tool_execution: ToolExecution
    user_input_schema: list[UserInputField] | None = None
    note: str | None = None
    """Why the requirement exists when it is not the tool's own flag (an uncertain outcome)."""
    uncertain_outcome: bool = False
    approval_type: Literal["required", "audit", "none"] = "none"
    """How the tool's ``@approval`` marks it (``none`` without one)."""
    policy: ApprovalPolicy | None = None
    """Who may decide and what the deadline does (``@approval(approvers=..., timeout=...)``)."""
    deadline: float | None = None
    """Epoch seconds at which the policy's ``on_timeout`` acts, if nobody decided."""
    approvals: list[str] = Field(default_factory=list)
    """Who has confirmed so far, when the policy asks for a quorum."""
    escalation_level: int = 0
    """How many of the policy's escalation steps have fired."""
    paused_at: float | None = None
    """Epoch seconds the pause began: escalation steps are measured from here."""
    member_agent_name: str | None = None
    """On a team run: the member whose tool call this is (decide it on the team run all the same)."""
    member_run_id: str | None = None
    """On a team run: the member's own run (a child workflow); the id is ``<member_run_id>/<its id>``."""

    @property
    def approvers(self) -> list[str]:
        """Who may decide; empty means anyone."""
        return list(self.policy.approvers) if self.policy else []
    pause: int = 0
    """The pause (1, 2, ...) of the run that raised it."""
    created_at: int = 0
    resolution: Literal["confirmed", "rejected", "input_provided", "result_provided", "expired"] | None = None
    confirmed: bool | None = None
    rejection_reason: str | None = None
    resolved_by: str | None = None
    resolved_at: int | None = None

    _decision: Decision | None = PrivateAttr(default=None)
    _asked: list[str] = PrivateAttr(default_factory=list)
    """The user-input fields whose value was None when this object was made: those a person fills."""
    _known: dict[str, Any] = PrivateAttr(default_factory=dict)
    """The other user-input fields' values when this object was made: the model's."""
    _feedback: list[UserFeedbackQuestion] | None = PrivateAttr(default=None)
    """The questionnaire of a user-feedback requirement, made once (answers are written on its questions)."""

    def model_post_init(self, context: Any, /) -> None:
        """Remember which fields were asked and what the model put in the others, to tell later
        what a person assigned (``field.value = ...``) from what was there."""
        for f in self.user_input_schema or []:
            if f.value is None:
                self._asked.append(f.name)
            else:
                self._known[f.name] = copy.deepcopy(f.value)

    @property
    def needs_confirmation(self) -> bool:
        return self.kind == "confirmation"

    @property
    def needs_user_input(self) -> bool:
        """A person fills ``user_input_schema``'s fields; False for a user-feedback questionnaire, which
        is answered with :meth:`provide_user_feedback` instead."""
        return self.kind == "user_input" and self._questionnaire() is None

    @property
    def needs_external_execution(self) -> bool:
        return self.kind == "external_execution"

    @property
    def needs_user_feedback(self) -> bool:
        """An ``ask_user`` questionnaire (Agno's ``UserFeedbackTools``): answer it with
        :meth:`provide_user_feedback`, the questions are :attr:`user_feedback_schema`."""
        return self._questionnaire() is not None

    @property
    def user_feedback_schema(self) -> list[UserFeedbackQuestion] | None:
        """The questions of a user-feedback requirement (None on any other): each one's ``header``,
        ``question``, ``options`` (``label``, ``description``) and ``multi_select``, and its
        ``selected_options`` once answered (here, or by the run). The same objects on every read."""
        if self._feedback is None:
            raw = self._questionnaire()
            if raw is None:
                return None
            answers = {f.name: f.value for f in self.user_input_schema or [] if f.name != FEEDBACK_FIELD}
            questions = []
            for item in raw:
                q = UserFeedbackQuestion.from_dict({k: v for k, v in item.items() if k != "selected_options"})
                chosen = answers.get(q.question)
                if isinstance(chosen, list):
                    q.selected_options = list(chosen)
                    for o in q.options or []:
                        o.selected = o.label in chosen
                questions.append(q)
            self._feedback = questions
        return self._feedback

    def _questionnaire(self) -> list[dict[str, Any]] | None:
        """The model's questions when this is a user-feedback requirement (see :data:`FEEDBACK_FIELD_TYPE`)."""
        if self.kind != "user_input":
            return None
        for f in self.user_input_schema or []:
            if f.name == FEEDBACK_FIELD and f.type_label == FEEDBACK_FIELD_TYPE and isinstance(f.value, list):
                return [q for q in f.value if isinstance(q, dict)]
        return None

    @property
    def member_agent_id(self) -> None:
        """Agno's id of the team member whose call this is; hitl names members (:attr:`member_agent_name`)."""
        return None

    @property
    def pause_type(self) -> str:
        """Agno's name for :attr:`kind`: ``confirmation``, ``user_input`` or ``external_execution``; and
        ``user_feedback`` for an ``ask_user`` questionnaire."""
        return "user_feedback" if self.needs_user_feedback else self.kind

    @property
    def confirmation(self) -> bool | None:
        """True once confirmed, False once rejected (here or by the run, an expiry included), else None (Agno's)."""
        decision = self._decision
        if isinstance(decision, Confirm):
            return True
        if isinstance(decision, Reject):
            return False
        if self.resolution == "confirmed":
            return True
        if self.resolution in ("rejected", "expired"):
            return False
        return None

    @property
    def confirmation_note(self) -> str | None:
        """The reason given with a rejection (Agno's name), made here or recorded by the run."""
        if isinstance(self._decision, Reject):
            return self._decision.reason
        if self.resolution in ("rejected", "expired"):
            return self.rejection_reason
        return None

    @property
    def external_execution_result(self) -> str | None:
        """The result given for a tool executed outside the agent, as the model reads it (Agno's name)."""
        if isinstance(self._decision, ProvideResult):
            return render_result(self._decision.result)
        if self.resolution == "result_provided":
            return self.tool_execution.result
        return None

    @property
    def decision(self) -> Decision | None:
        """The decision made on this object by a method and not yet sent (see :meth:`implied_decision`)."""
        return self._decision

    def implied_decision(self) -> Decision | None:
        """The decision ``continue_run`` sends for this requirement, or None.

        The one made by a method (:meth:`confirm`, :meth:`reject`, :meth:`provide_input`,
        :meth:`provide_result`); else, on a user-input requirement the run has not resolved, once
        every asked field (those whose ``value`` was None when this object was made) has a value
        assigned (``field.value = ...``, as Agno's examples do), a ``provide_input`` of those values.

        Raises:
            InvalidDecisionError: a field holding the model's value was assigned a different one.
        """
        if self._decision is not None:
            return self._decision
        selections = self._assigned_feedback()
        if selections is not None:
            return self._feedback_decision(selections, None)
        values = self._assigned_input()
        if values is None:
            return None
        where = self._where()
        schema = {f.name: f for f in self.user_input_schema or []}
        for name, known in self._known.items():
            now = schema[name].value if name in schema else None
            if now != known:
                raise InvalidDecisionError(
                    f"{where}: field {name!r} holds the model's value {known!r} and was assigned {now!r}; changing what "
                    f"the model chose is not this decision's to make: assign only the asked fields {self._asked}")
        return self._build(ProvideInput, {"value": values}, "user_input", "provide_input")

    def _assigned_input(self) -> dict[str, Any] | None:
        """The asked fields' values when every one of them has been assigned one, else None."""
        if self.kind != "user_input" or self.resolution is not None or not self._asked:
            return None
        values = {f.name: f.value for f in self.user_input_schema or [] if f.name in self._asked}
        if len(values) != len(self._asked) or any(v is None for v in values.values()):
            return None
        return values

    def is_resolved(self) -> bool:
        """Whether the run already has a decision for this requirement, or one is made here (by a
        method, or by assigning a value to every asked field of a user-input requirement)."""
        return (self.resolution is not None or self._decision is not None or self._assigned_input() is not None
                or self._assigned_feedback() is not None)

    def _assigned_feedback(self) -> dict[str, list[str]] | None:
        """Every question's ``selected_options`` when each was given some (by :meth:`provide_user_feedback`,
        or assigned), on a user-feedback requirement the run has not resolved; else None."""
        if self.resolution is not None or self._feedback is None:
            return None
        if any(q.selected_options is None for q in self._feedback):
            return None
        return {q.question: list(q.selected_options or []) for q in self._feedback}

    def _feedback_decision(self, selections: dict[str, list[str]], resolved_by: str | None) -> Decision:
        problem = feedback_problem(self.user_feedback_schema or [], selections)
        if problem is not None:
            raise InvalidDecisionError(f"{self._where()}: provide_user_feedback() refused: {problem}")
        return self._build(ProvideInput, {"value": selections, "resolved_by": resolved_by}, "user_input",
                           "provide_user_feedback")

    def _where(self) -> str:
        return f"requirement {self.id!r} ({self.tool_execution.tool_name})"

    def _build(self, make: type[Confirm | Reject | ProvideInput | ProvideResult], fields: dict[str, Any],
               kind: RequirementKind | None, verb: str) -> Decision:
        where = self._where()
        if self.resolution is not None:
            raise RequirementAlreadyResolvedError(f"{where} was already resolved: {self.resolution}")
        if kind is not None and self.kind != kind:
            raise InvalidDecisionError(f"{where} needs {self.kind}; {verb}() does not apply")
        try:
            decision = make(requirement_id=self.id, **fields)
        except pydantic.ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise InvalidDecisionError(f"{where}: {verb}() refused: {problems}") from None
        refuse_unsafe(decision, where)
        return decision

    def _decide(self, make: type[Confirm | Reject | ProvideInput | ProvideResult], fields: dict[str, Any],
                kind: RequirementKind | None, verb: str) -> None:
        self._decision = self._build(make, fields, kind, verb)

    def confirm(
        self, arguments: dict[str, Any] | None = None, *, resolved_by: str | None = None, remember: bool = False
    ) -> None:
        """Approve the call, optionally with corrected ``arguments`` (validated when sent).

        ``remember=True`` approves this tool for the rest of the run: its later calls run without
        a pause, each recorded on the audit trail as approved by that decision.
        """
        self._decide(Confirm, {"arguments": arguments, "resolved_by": resolved_by, "remember": remember},
                     "confirmation", "confirm")

    def reject(self, reason: str | None = None, *, note: str | None = None, resolved_by: str | None = None) -> None:
        """Refuse the call; the model is told, with ``reason`` (Agno's ``note=`` works too)."""
        self._decide(Reject, {"reason": reason or note, "resolved_by": resolved_by}, None, "reject")

    def provide_input(self, value: Any, *, resolved_by: str | None = None) -> None:
        """Fill the requested fields: a dict of field values, or one value when one field is asked.

        The dict may hold every field of ``user_input_schema`` (as Agno's examples pass it): a
        field the model filled is dropped when it holds the model's value, and refused when it
        holds another (that is the model's choice, not this decision's). Keys that name no field
        are refused by the run. The asked fields' values are also set on ``user_input_schema``.

        Raises:
            InvalidDecisionError: not a user-input requirement, or a model's field changed.
        """
        if isinstance(value, dict) and self.kind == "user_input":
            value = self._without_known(value)
        self._decide(ProvideInput, {"value": value, "resolved_by": resolved_by}, "user_input", "provide_input")
        schema = self.user_input_schema or []
        if isinstance(value, dict):
            for f in schema:
                if f.name in self._asked and f.name in value:
                    f.value = value[f.name]
        elif len(self._asked) == 1:
            for f in schema:
                if f.name == self._asked[0]:
                    f.value = value

    def _without_known(self, values: dict[str, Any]) -> dict[str, Any]:
        kept = {}
        for name, value in values.items():
            if name not in self._known:
                kept[name] = value
            elif value != self._known[name]:
                raise InvalidDecisionError(
                    f"{self._where()}: provide_input() refused: field {name!r} holds the model's value "
                    f"{self._known[name]!r}, not {value!r}; changing what the model chose is not this decision's to "
                    f"make: give only the asked fields {self._asked}")
        return kept

    def provide_user_input(self, values: Any, *, resolved_by: str | None = None) -> None:
        """Agno's spelling of :meth:`provide_input`."""
        self.provide_input(values, resolved_by=resolved_by)

    def provide_user_feedback(self, selections: dict[str, list[str]], *, resolved_by: str | None = None) -> None:
        """Answer an ``ask_user`` questionnaire (Agno's): ``{question text: [labels chosen]}``.

        The labels are written on :attr:`user_feedback_schema` (``selected_options``, and each option's
        ``selected``). Questions may be answered over several calls, as in Agno: once every one has
        an answer, the requirement is decided, and ``continue_run`` sends the answers; the model reads
        them as the tool's result. An empty list (nothing chosen) is an answer.

        Raises:
            InvalidDecisionError: not a user-feedback requirement; or, changing nothing, a question that
                is not asked, a label that is not one of its options (or given twice), or more than one
                label for a question that is not ``multi_select``.
            RequirementAlreadyResolvedError: the run has already resolved it.
        """
        if not self.needs_user_feedback:
            raise InvalidDecisionError(
                f"{self._where()} needs {self.kind}; provide_user_feedback() answers an ask_user questionnaire "
                "(UserFeedbackTools), which this is not")
        if self.resolution is not None:
            raise RequirementAlreadyResolvedError(f"{self._where()} was already resolved: {self.resolution}")
        questions = self.user_feedback_schema or []
        problem = feedback_problem(questions, selections)
        if problem is not None:
            raise InvalidDecisionError(f"{self._where()}: provide_user_feedback() refused: {problem}")
        for q in questions:
            if q.question in selections:
                q.selected_options = list(selections[q.question])
                for o in q.options or []:
                    o.selected = o.label in q.selected_options
        complete = self._assigned_feedback()
        if complete is None:
            return  # more questions to answer
        self._decision = self._feedback_decision(complete, resolved_by)
        for f in self.user_input_schema or []:
            if f.name in complete:
                f.value = complete[f.name]

    def provide_result(self, result: Any, *, resolved_by: str | None = None) -> None:
        """Give the result of a tool executed outside the agent."""
        self._decide(ProvideResult, {"result": result, "resolved_by": resolved_by}, "external_execution", "provide_result")

    def set_external_execution_result(self, result: Any, *, resolved_by: str | None = None) -> None:
        """Agno's spelling of :meth:`provide_result`."""
        self.provide_result(result, resolved_by=resolved_by)


class RunOutput(BaseModel):
    """A run as it stands: returned by ``run``, ``continue_run`` and ``get_run``."""

    run_id: str
    agent_name: str = ""
    session_id: str | None = None
    status: RunStatus = RunStatus.running
    content: str | None = None
    error: str | None = None
    requirements: list[RunRequirement] = Field(default_factory=list)
    """The requirements of the latest pause, resolved ones included."""
    pauses: int = 0
    metadata: dict[str, Any] | None = None
    """Agno's run metadata, filled by the caller's process: ``metadata["approval"]`` is the approval
    record a ``continue_run`` without decisions went on with (never sent to or kept by the run)."""
    waiting_for_worker: str | None = None
    """Set by ``get_run`` when no worker can take the run now (none serves its agent): why.

    The run is not failed: it goes on as soon as a worker that serves its agent polls."""

    @property
    def is_paused(self) -> bool:
        return self.status == RunStatus.paused

    @property
    def active_requirements(self) -> list[RunRequirement]:
        """The requirements still waiting for a decision."""
        return [r for r in self.requirements if not r.is_resolved()]


class RunSummary(BaseModel):
    """One run as ``list_runs`` finds it, from its search attributes (no worker is asked)."""

    run_id: str
    agent_name: str | None = None
    status: str
    """hitl's status (running, paused, completed, cancelled, error), or Temporal's for a run that
    ended before it set one (terminated, timed_out...)."""
    pending_tools: list[str] = Field(default_factory=list)
    next_deadline: datetime | None = None
    team_run_id: str | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None
