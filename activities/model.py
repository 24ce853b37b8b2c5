"""The model call: one activity per turn, through the official ``openai`` client.

The client is built with its own retries off: Temporal owns retries. 408/409/429/5xx and
connection errors are retryable (honouring Retry-After); other 4xx fail the run at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pydantic
from temporalio import activity
from temporalio.exceptions import ApplicationError

from hitl import limits
from hitl._core import context as _context
from hitl._core import sessions
from hitl._core import stream as _stream
from hitl._wire import CALL_MODEL, McpToolSpec, MemberPlan, Message, ModelRequest, ModelTurn, ToolCallPlan
from hitl.activities._agents import agent_named
from hitl.agent import Agent
from hitl.models.openai import OpenAIModel
from hitl.observability import telemetry
from hitl.policy import ApprovalPolicy, ApprovalRule
from hitl.run import RequirementKind
from hitl.tools import Tool
from hitl.tools.mcp import MAX_TOOLS, McpServerError, McpTool

if TYPE_CHECKING:  # annotations only: openai's Responses types are not needed to import this module
    from openai.types.responses import Response, ResponseInputParam

_RETRYABLE_STATUS = {408, 409, 429}
MAX_TASK_CHARS = 100_000
_clients: dict[asyncio.AbstractEventLoop, dict[tuple[str | None, str, float], openai.AsyncOpenAI]] = {}
"""Per loop, strongly: a process has one or two (its own, hitl's in-process worker's), and a client dropped
with its loop would leave its connections to be found unclosed by the collector."""


def _client(model: OpenAIModel) -> openai.AsyncOpenAI:
    # One per event loop too: an httpx pool is bound to the loop that made it, and a process may run
    # workers on two loops (its own and hitl's in-process worker).
    key = (model.resolved_base_url(), model.resolved_api_key(), model.timeout)
    mine = _clients.setdefault(asyncio.get_running_loop(), {})
    client = mine.get(key)
    if client is None:
        client = openai.AsyncOpenAI(base_url=key[0], api_key=key[1], timeout=key[2], max_retries=0)
        mine[key] = client
    return client


TOO_LARGE_NOTE = (
    "[hitl] Your previous answer was {size}, over the limit of {limit} for one answer, and was not used. "
    "Answer again, more briefly: keep tool arguments small and refer to large data instead of including it."
)
_SAFE_CALL_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@activity.defn(name=CALL_MODEL)
async def call_model(request: ModelRequest) -> ModelTurn:
    """Ask the agent's model for its next turn, and plan each tool call it makes.

    An answer over ``hitl.limits.MAX_MODEL_TURN_BYTES`` never reaches history: the model is asked
    once more with a note saying why, and if the second answer is too large as well the run
    fails with a ``PayloadTooLargeError`` that says so.
    """
    agent = agent_named(request.agent_name)
    with telemetry.span("hitl.model_call", {"hitl.agent": agent.name, "hitl.run_id": request.run_id,
                                            "hitl.model": agent.model.id}):
        return await _turn(agent, request)


async def _turn(agent: Agent, request: ModelRequest) -> ModelTurn:
    model = agent.model
    tools, listed = await _tools_of(agent, request)
    content, calls = await _ask(agent, request.messages, request.run_id, request.session_id, tools=tools)
    n = _turn_bytes(content, calls)
    if n > limits.MAX_MODEL_TURN_BYTES:
        note = TOO_LARGE_NOTE.format(size=limits.size(n), limit=limits.size(limits.MAX_MODEL_TURN_BYTES))
        activity.logger.warning("run %s: model %r answered %s, over the limit; asking again", request.run_id, model.id,
                                limits.size(n))
        content, calls = await _ask(agent, [*request.messages, {"role": "user", "content": note}], request.run_id,
                                    request.session_id, stream=False, tools=tools)  # the discarded answer was streamed already
        again = _turn_bytes(content, calls)
        if again > limits.MAX_MODEL_TURN_BYTES:
            raise ApplicationError(
                f"model {model.id!r} answered {limits.size(n)}, then {limits.size(again)} when asked to be brief: over "
                f"hitl's limit of {limits.size(limits.MAX_MODEL_TURN_BYTES)} for one answer "
                "(hitl.limits.MAX_MODEL_TURN_BYTES)", type="PayloadTooLargeError", non_retryable=True)
    content = limits.storable(content) if content is not None else None
    calls = [(cid if _SAFE_CALL_ID.match(cid) else f"hitl_call_{i}", name, args) for i, (cid, name, args) in enumerate(calls)]
    assistant: Message = {"role": "assistant", "content": content}
    if calls:
        assistant["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}} for cid, name, args in calls
        ]
    plans = [_delegation(agent, _gate(agent.approval_rules, _plan(tools, cid, name, args)))
             for cid, name, args in calls]
    return ModelTurn(content=content, assistant_message=assistant, tool_calls=plans, mcp_tools=listed)


async def _tools_of(agent: Agent, request: ModelRequest) -> tuple[dict[str, Tool], list[McpToolSpec] | None]:
    """The tools offered this turn: the agent's own and the MCP tools the run recorded; on a run's first
    turn (none recorded yet) the MCP servers' tools are listed, and returned to be recorded."""
    if request.mcp_tools is None and not agent.mcp_toolsets:
        return agent.tools, None
    listed = None
    specs = request.mcp_tools
    if specs is None:
        specs = listed = await _list_mcp_tools(agent, request.run_id)
    tools = dict(agent.tools)
    for spec in specs:
        toolset = agent.mcp_toolsets.get(spec.server)
        # The stricter of what the run recorded and what the configuration says now: a tool allowed when
        # the run listed it needs a decision once the configuration asks for one (a server gone: always).
        now = toolset.kind_of(spec.remote_name, destructive=spec.destructive) if toolset else "confirmation"
        if spec.kind is None and now is not None or now == "external_execution":
            spec = spec.model_copy(update={"kind": now})
        tools[spec.name] = McpTool(spec, toolset)
    return tools, listed


async def _list_mcp_tools(agent: Agent, run_id: str) -> list[McpToolSpec]:
    """Each MCP server's tools; one whose name another tool has already is left out (and logged)."""
    taken = set(agent.tools)
    specs: list[McpToolSpec] = []
    for toolset in agent.mcp_toolsets.values():
        try:
            found = await toolset.discover(room=max(0, MAX_TOOLS - len(taken)))
        except McpServerError as exc:
            raise ApplicationError(f"run {run_id}: {exc}", type="McpServerError") from None
        for spec in found:
            if spec.name in taken:
                activity.logger.warning("run %s: MCP server %r's tool %r is left out: the agent has a tool of that "
                                        "name (give the MCPTools a tool_name_prefix=)", run_id, spec.server, spec.name)
                continue
            taken.add(spec.name)
            specs.append(spec)
    return specs


async def _ask(agent: Agent, messages: list[Message], run_id: str = "", session_id: str | None = None,
               stream: bool = True, tools: dict[str, Tool] | None = None) -> tuple[str | None, list[tuple[str, str, str]]]:
    model = agent.model
    tools = agent.tools if tools is None else tools
    system = await _system(agent, run_id, session_id)
    publish = _publisher(run_id) if stream and run_id and _stream.wanted(run_id) else None
    try:
        if model.api == "responses":
            return await _responses(model, system, tools, messages, publish)
        return await _chat(model, system, tools, messages, publish)
    except openai.APIStatusError as exc:
        raise _status_error(model, exc) from None
    except openai.APIConnectionError as exc:
        raise ApplicationError(f"model {model.id!r} unreachable: {exc}", type="ModelConnectionError") from None
    except (json.JSONDecodeError, openai.APIResponseValidationError, pydantic.ValidationError, _StreamCutShort) as exc:
        # A body cut short on the way (a proxy, a dropped connection) may come whole next time: retried.
        raise ApplicationError(
            f"model {model.id!r} at {model.resolved_base_url() or 'api.openai.com'} answered with a body that is not "
            f"valid JSON of a {model.api} response (cut short?): {exc}", type="ModelResponseError") from None
    except (openai.APIError, httpx.HTTPError) as exc:  # raised while a stream was read: retried, as a cut body is
        raise ApplicationError(f"model {model.id!r}: the streamed answer failed: {type(exc).__name__}: {exc}",
                               type="ModelResponseError") from None


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


async def _system(agent: Agent, run_id: str, session_id: str | None = None) -> str | None:
    """The system message, with ``{key}`` filled from the session's state when the agent has one (Agno's
    ``resolve_in_context``); other braces are left as written."""
    text = agent.system_message
    if text is None or agent.session_state is None or "{" not in text:
        return text
    known = _context.lookup(run_id)
    state = await asyncio.to_thread(sessions.state, agent, session_id or (known.session_id if known else None))
    return _PLACEHOLDER.sub(lambda m: str(state[m.group(1)]) if m.group(1) in state else m.group(0), text)


def _turn_bytes(content: str | None, calls: list[tuple[str, str, str]]) -> int:
    return limits.json_bytes([content, calls])


def _tool_specs(tools: dict[str, Tool]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(t.name, t.description, t.schema) for t in tools.values()]


async def _chat(
    model: OpenAIModel, instructions: str | None, tools: dict[str, Tool], messages: list[Message],
    publish: Callable[[str], None] | None = None,
) -> tuple[str | None, list[tuple[str, str, str]]]:
    kwargs: dict[str, Any] = {}
    if tools:
        kwargs["tools"] = [
            {"type": "function", "function": {"name": n, "description": d, "parameters": p}}
            for n, d, p in _tool_specs(tools)
        ]
    if model.temperature is not None:
        kwargs["temperature"] = model.temperature
    system = [{"role": "system", "content": instructions}] if instructions else []
    if publish is not None:
        return await _chat_streamed(model, [*system, *messages], kwargs, publish)
    response = await _client(model).chat.completions.create(
        model=model.id, messages=[*system, *messages], **kwargs  # type: ignore[list-item]  # plain dicts (_wire.Message)
    )
    message = response.choices[0].message
    calls = [
        (tc.id, tc.function.name, tc.function.arguments or "{}")
        for tc in (message.tool_calls or [])
        if tc.type == "function"  # we offer no custom tools
    ]
    return message.content, calls


def _responses_input(messages: list[Message]) -> ResponseInputParam:
    items: ResponseInputParam = []
    for m in messages:
        if m["role"] == "tool":
            items.append({"type": "function_call_output", "call_id": m["tool_call_id"], "output": m["content"]})
            continue
        if m.get("content"):
            items.append({"role": m["role"], "content": m["content"]})
        for tc in m.get("tool_calls") or []:
            fn = tc["function"]
            items.append({"type": "function_call", "call_id": tc["id"], "name": fn["name"], "arguments": fn["arguments"]})
    return items


async def _responses(
    model: OpenAIModel, instructions: str | None, tools: dict[str, Tool], messages: list[Message],
    publish: Callable[[str], None] | None = None,
) -> tuple[str | None, list[tuple[str, str, str]]]:
    kwargs: dict[str, Any] = {}
    if tools:
        kwargs["tools"] = [
            {"type": "function", "name": n, "description": d, "parameters": p, "strict": False}
            for n, d, p in _tool_specs(tools)
        ]
    if instructions:
        kwargs["instructions"] = instructions
    if model.temperature is not None:
        kwargs["temperature"] = model.temperature
    if publish is not None:
        response = await _responses_streamed(model, _responses_input(messages), kwargs, publish)
    else:
        response = await _client(model).responses.create(model=model.id, input=_responses_input(messages), **kwargs)
    texts: list[str] = []
    calls: list[tuple[str, str, str]] = []
    for item in response.output:
        if item.type == "message":
            texts.extend(part.text for part in item.content if part.type == "output_text")
        elif item.type == "function_call":
            calls.append((item.call_id, item.name, item.arguments or "{}"))
    return ("".join(texts) or None), calls


class _StreamCutShort(Exception):
    """A streamed answer ended before its last event (retried, as a body cut short is)."""


def _publisher(run_id: str) -> Callable[[str], None]:
    """Hand the text the model writes for ``run_id`` to a caller streaming it in this process (``hitl._core.stream``)."""
    attempt = activity.info().attempt if activity.in_activity() else 1

    def publish(text: str) -> None:
        if text:
            _stream.publish(_stream.Delta(run_id=run_id, text=text, attempt=attempt))

    return publish


async def _chat_streamed(model: OpenAIModel, messages: list[Any], kwargs: dict[str, Any],
                         publish: Callable[[str], None]) -> tuple[str | None, list[tuple[str, str, str]]]:
    """Chat Completions, streamed: the text published as it comes, the calls put together by index."""
    stream = await _client(model).chat.completions.create(model=model.id, messages=messages, stream=True, **kwargs)
    texts: list[str] = []
    calls: dict[int, list[str]] = {}
    finished = False
    async for chunk in stream:
        for choice in chunk.choices[:1]:
            delta = choice.delta
            if delta.content:
                texts.append(delta.content)
                publish(delta.content)
            for tc in delta.tool_calls or []:
                slot = calls.setdefault(tc.index, ["", "", ""])
                slot[0] = tc.id or slot[0]
                if tc.function is not None:
                    slot[1] = tc.function.name or slot[1]
                    slot[2] += tc.function.arguments or ""
            finished = finished or choice.finish_reason is not None
    if not finished:
        raise _StreamCutShort("the stream ended without a finish reason")
    return ("".join(texts) or None), [(cid, name, args or "{}") for _, (cid, name, args) in sorted(calls.items())]


async def _responses_streamed(model: OpenAIModel, items: ResponseInputParam, kwargs: dict[str, Any],
                              publish: Callable[[str], None]) -> Response:
    """The Responses API, streamed: the text published as it comes; the completed response returned."""
    stream = await _client(model).responses.create(model=model.id, input=items, stream=True, **kwargs)
    async for event in stream:
        if event.type == "response.output_text.delta":
            publish(event.delta)
        elif event.type == "response.completed":
            return event.response
        elif event.type in ("response.failed", "response.incomplete"):
            raise _StreamCutShort(f"the model's stream ended {event.type.split('.')[-1]}")
    raise _StreamCutShort("the stream ended before response.completed")


def _plan(tools: dict[str, Tool], call_id: str, name: str, raw_arguments: str) -> ToolCallPlan:
    t = tools.get(name)
    if t is None:
        return ToolCallPlan(
            tool_call_id=call_id, tool_name=name, invalid=f"Unknown tool {name!r}; available: {sorted(tools)}"
        )
    try:
        arguments = json.loads(raw_arguments or "{}")
        if not isinstance(arguments, dict):
            raise ValueError("arguments must be a JSON object")
    except RecursionError:
        arguments = None
    except ValueError as exc:
        return ToolCallPlan(tool_call_id=call_id, tool_name=name, invalid=f"Arguments are not a JSON object: {exc}")
    # Nested past what hitl records (the turn would fail to encode, and each retry costs a model call): told, not run.
    if arguments is None or limits.depth(arguments) > limits.MAX_JSON_DEPTH:
        return ToolCallPlan(tool_call_id=call_id, tool_name=name, invalid=(
            f"The call was not made: its arguments nest deeper than {limits.MAX_JSON_DEPTH} levels; call again with "
            "flatter arguments"))
    problem = limits.unstorable(arguments, "arguments")
    if problem is not None:
        # They would become an approval record, which cannot hold them: the model is told, and may call again.
        return ToolCallPlan(tool_call_id=call_id, tool_name=name,
                            invalid=f"The call was not made: {problem}, which cannot be recorded; call again without it")
    mcp = t.spec if isinstance(t, McpTool) else None
    base = ToolCallPlan(
        tool_call_id=call_id,
        tool_name=name,
        idempotent=t.idempotent,
        # An MCP tool's approval is on the trail, as an @approval tool's is.
        approval_type=t.approval.value if t.approval is not None else "required" if mcp and mcp.kind else "none",
        mcp_server=mcp.server if mcp else None,
        mcp_tool=mcp.remote_name if mcp else None,
        timeout_seconds=t.timeout.total_seconds(),
        max_attempts=t.max_attempts if t.idempotent else 1,
        # Only a policy that says something crosses into history.
        policy=t.approval_policy if t.approval_policy is not None and t.approval_policy != ApprovalPolicy() else None,
    )
    # A call that asks a person (the tool's hook builds the question from the model's arguments).
    try:
        asked = t.user_input_request(arguments)
    except Exception as exc:  # arguments that make no question: the model is told, as for invalid arguments
        return base.model_copy(update={"arguments": arguments, "invalid": str(exc)})
    if asked is not None:
        known, schema = asked
        return base.model_copy(update={"arguments": known, "kind": "user_input", "user_input_schema": schema})
    try:
        arguments = t.validate_arguments(arguments, context=f"tool call {call_id}")
    except Exception as exc:
        return base.model_copy(update={"arguments": arguments, "invalid": str(exc)})
    kind: RequirementKind | None
    if t.external_execution:
        kind = "external_execution"
    else:
        try:
            kind = "confirmation" if t.needs_confirmation(arguments) else None
        except Exception:  # a broken rule must not let a sensitive call through
            kind = "confirmation"
    return base.model_copy(update={"arguments": arguments, "kind": kind})


def _gate(rules: list[ApprovalRule], plan: ToolCallPlan) -> ToolCallPlan:
    """The Agent's approval rules: a call that would run at once may need an approval after all."""
    if plan.kind is not None or plan.invalid is not None:
        return plan
    for rule in rules:
        if rule.gates(plan.tool_name, plan.arguments):
            return plan.model_copy(update={
                "kind": "confirmation",
                "approval_type": "required",
                "policy": plan.policy or (rule.policy if rule.policy != ApprovalPolicy() else None),
            })
    return plan


def _delegation(agent: Agent, plan: ToolCallPlan) -> ToolCallPlan:
    """A team's delegation call: name the member and how its run is set up."""
    t = agent.tools.get(plan.tool_name)
    if plan.invalid is not None or t is None or t.delegates_to is None:
        return plan
    wanted = plan.arguments.get("member_id")
    member = t.delegates_to.get(wanted) if isinstance(wanted, str) else None
    if member is None:
        return plan.model_copy(update={
            "invalid": f"Unknown member {wanted!r}; the team's members are {sorted(t.delegates_to)}"})
    task = plan.arguments.get("task")
    if not isinstance(task, str) or not task.strip() or len(task) > MAX_TASK_CHARS:
        # It becomes the member run's input: bounded, so it never nears Temporal's payload limit.
        return plan.model_copy(update={
            "invalid": f"The task for {wanted!r} must be non-empty text of at most {MAX_TASK_CHARS} characters"})
    borrowed = member.db is None and agent.db is not None
    return plan.model_copy(update={"member": MemberPlan(
        agent_name=member.name,
        audit=member.db is not None or borrowed,
        audit_agent=agent.name if borrowed else None,
        notify=bool(member.notifiers),
        history_event_limit=member.history_event_limit,
    )})


def _status_error(model: OpenAIModel, exc: openai.APIStatusError) -> ApplicationError:
    status = exc.status_code
    detail = exc.message
    if isinstance(exc.body, dict):
        detail = str(exc.body.get("message") or (exc.body.get("error") or {}).get("message") or detail)
    message = f"model {model.id!r} answered HTTP {status}: {detail}"
    if status in _RETRYABLE_STATUS or status >= 500:
        return ApplicationError(message, type="ModelServerError", next_retry_delay=_retry_after(exc))
    return ApplicationError(message, type="ModelRequestError", non_retryable=True)


def _retry_after(exc: openai.APIStatusError) -> timedelta | None:
    headers = exc.response.headers
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return timedelta(milliseconds=float(ms))
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return timedelta(seconds=float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return timedelta(seconds=max(0.0, parsed.timestamp() - time.time())) if parsed else None
