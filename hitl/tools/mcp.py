"""Tools from MCP servers (Agno's ``agno.tools.mcp.MCPTools``), over stdio or streamable HTTP::

    from hitl.tools.mcp import MCPTools

    docs = MCPTools(url="http://127.0.0.1:8000/mcp", approval={"search": "never"})
    files = MCPTools(command="python files_server.py", requires_confirmation_tools=["delete"])
    agent = Agent(model=..., tools=[docs, files])

How a run uses them:

- **The tool list is discovered when the run first calls its model and recorded in the run's
  history** (with that model call's result): every later turn offers the model the same tools, on
  any worker, in replay too. A tool the server adds mid-run is not offered to that run (a call to it
  is refused as unknown, never run); the next run sees it.
- **Approval fails closed.** A tool runs without a decision only where the configuration says so:
  ``approval="never"`` for the whole server, or ``approval={"name": "never"}``. Every tool the
  configuration does not name waits for ``confirm()``/``reject()``, including tools the server adds
  later, as do those in ``requires_confirmation_tools`` (Agno's keyword; in Agno the tools it does
  not name run at once) and every tool the server annotates ``destructiveHint``, whatever the
  configuration says.
- **Each call is an activity**, through one session per server and worker (opened on first use,
  opened again after the server went away). A tool not annotated ``idempotentHint`` (nor
  ``readOnlyHint``) is run at most once: a worker that dies mid-call pauses the run for a person to
  say what happened, as for a local ``@tool(idempotent=False)``. A server that cannot be reached
  fails the call with a retryable error naming it; after the attempts, the model reads the error.
  A server's own tool error (``isError``) is the tool's output: the model reads it.
- Arguments are checked against the tool's input schema before a call is planned; results go
  through the same size and text limits as a local tool's (``hitl.limits``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shlex
import weakref
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from hitl._wire import McpToolSpec
from hitl.errors import ConfigurationError, InvalidDecisionError, ToolDefinitionError
from hitl.tools.decorator import Tool
from hitl.tools.toolkit import Toolkit

try:  # loaded with this module, never inside a workflow's sandbox (decisions check edited arguments there)
    import jsonschema
except ImportError:  # without the mcp extra: no MCP tool can exist either
    jsonschema = None

if TYPE_CHECKING:
    from hitl._wire import McpToolSpec
    from hitl.run import RequirementKind
    from hitl.run.base import RunContext

__all__ = ["MCPTools", "McpServerError", "McpOutcomeUnknown"]

log = logging.getLogger("hitl")
Approval = Literal["always", "never"]
_TRANSPORTS = ("stdio", "streamable-http", "sse")
MAX_TOOLS = 128
"""The most tools one model call is offered (OpenAI's limit): the agent's own and its servers' together."""
MAX_TOOL_BYTES = 16_000
"""A tool's input schema and description, at most: a run records every tool it lists."""
MAX_LISTED_BYTES = 256_000
"""All the MCP tools a run records, at most (far below Temporal's 2 MB per payload)."""
MAX_DESCRIPTION_CHARS = 1024
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""What OpenAI accepts as a function's name."""
_toolsets: weakref.WeakSet[MCPTools] = weakref.WeakSet()


async def close_sessions() -> None:
    """Close every MCP session this event loop holds (a worker that stops calls it: stdio servers end)."""
    for toolset in list(_toolsets):
        await toolset.close()


class McpServerError(Exception):
    """The MCP server could not be reached or its session broke: the call may be tried again."""


class MCPTools(Toolkit):
    """The tools of one MCP server, for an Agent or Team.

    Args:
        command: The command that starts a stdio server (``"python server.py"``; split like a shell).
        url: A streamable HTTP (or, with ``transport="sse"``, SSE) server's endpoint.
        env: Environment for the stdio server's process.
        transport: ``"stdio"`` (default with ``command``), ``"streamable-http"`` (default with ``url``) or ``"sse"``.
        name: The server's name in hitl (its tools' calls and errors name it); by default derived from
            the command or URL. Two MCPTools of one agent need two names.
        approval: ``"always"`` or ``"never"`` for every tool of the server, or a mapping from tool name
            to either. Unnamed tools require approval (fail closed).
        requires_confirmation_tools: Agno's keyword: these tools require approval (as ``"always"``).
        external_execution_required_tools: These tools are never called by the agent: the run waits for
            ``set_external_execution_result()``.
        include_tools: Only these tools (by the server's names).
        exclude_tools: All tools but these.
        tool_name_prefix: Offered to the model as ``<prefix>_<name>`` (Agno's), to keep servers apart.
        timeout_seconds: How long connecting and each call may take (Agno's default, 10 s).
        headers: HTTP headers for the HTTP transports (sent to the server, never recorded).
        max_attempts: Attempts of a call to an idempotent tool when the server cannot be reached.

    Raises:
        ToolDefinitionError: neither or both of ``command`` and ``url``; an unknown transport or
            approval value; a keyword hitl does not take (``session=``, ``server_params=``: hitl opens
            its own sessions, on the worker).
    """

    def __init__(
        self,
        command: str | None = None,
        *,
        url: str | None = None,
        env: Mapping[str, str] | None = None,
        transport: Literal["stdio", "sse", "streamable-http"] | None = None,
        name: str | None = None,
        approval: Approval | Mapping[str, Approval] | None = None,
        requires_confirmation_tools: Sequence[str] | None = None,
        external_execution_required_tools: Sequence[str] | None = None,
        include_tools: Sequence[str] | None = None,
        exclude_tools: Sequence[str] | None = None,
        tool_name_prefix: str | None = None,
        timeout_seconds: float = 10,
        headers: Mapping[str, str] | None = None,
        max_attempts: int = 3,
        **options: Any,
    ) -> None:
        try:
            import mcp  # noqa: F401 - the SDK the sessions are made with
        except ImportError:
            raise ToolDefinitionError("MCPTools needs the MCP SDK: pip install 'hitl[mcp]'") from None
        refused = sorted(set(options) & {"session", "server_params", "client", "header_provider"})
        if refused:
            raise ToolDefinitionError(
                f"MCPTools: {refused} are not taken: hitl opens its own sessions on the worker that runs the "
                "call; give command= (stdio) or url= (HTTP), with env= or headers=")
        options.pop("refresh_connection", None)  # sessions are reopened when they break; nothing to refresh
        options.pop("protocol_mode", None)
        if (command is None) == (url is None):
            raise ToolDefinitionError("MCPTools: give command= (a stdio server) or url= (an HTTP server), one of them")
        transport = transport or ("stdio" if command is not None else "streamable-http")
        if transport not in _TRANSPORTS:
            raise ToolDefinitionError(f"MCPTools: transport {transport!r}: expected one of {list(_TRANSPORTS)}")
        if (transport == "stdio") != (command is not None):
            raise ToolDefinitionError(f"MCPTools: transport {transport!r} needs "
                                      f"{'command=' if transport == 'stdio' else 'url='}")
        if isinstance(approval, str) and approval not in ("always", "never"):
            raise ToolDefinitionError(f"MCPTools: approval={approval!r}: expected 'always', 'never' or a mapping")
        if isinstance(approval, Mapping):
            wrong = {k: v for k, v in approval.items() if v not in ("always", "never")}
            if wrong:
                raise ToolDefinitionError(f"MCPTools: approval {wrong}: each tool maps to 'always' or 'never'")
        if timeout_seconds <= 0 or max_attempts < 1:
            raise ToolDefinitionError("MCPTools: timeout_seconds must be positive and max_attempts at least 1")
        super().__init__(name=name or _default_name(command, url), include_tools=include_tools,
                         exclude_tools=exclude_tools, requires_confirmation_tools=requires_confirmation_tools,
                         external_execution_required_tools=external_execution_required_tools, **options)
        self.command = command
        self.url = url
        self.env = dict(env) if env is not None else None
        self.transport = transport
        self.approval = approval if isinstance(approval, str) or approval is None else dict(approval)
        self.tool_name_prefix = tool_name_prefix
        self.timeout_seconds = float(timeout_seconds)
        self.headers = dict(headers or {})
        self.max_attempts = max_attempts
        self._sessions: dict[asyncio.AbstractEventLoop, _Session] = {}
        _toolsets.add(self)

    def __repr__(self) -> str:
        return f"MCPTools(name={self.name!r}, {'command' if self.command else 'url'}={self.command or self.url!r})"

    def get_tools(self) -> list[Tool]:
        """None here: an MCP server's tools are listed when a run starts (see the module's docs)."""
        return []

    def config_digest(self) -> str:
        """What the agent's version records of this server: where it is and what it allows (never headers)."""
        return repr((self.name, self.command, self.url, self.transport, self.approval,
                     sorted(self.requires_confirmation_tools), sorted(self.external_execution_required_tools),
                     self.include_tools, self.exclude_tools, self.tool_name_prefix))

    # Agno code opens a toolkit with `async with MCPTools(...) as tools:` before giving it to an agent.
    # hitl's sessions live on the worker that runs the calls; opening here connects nothing.
    async def __aenter__(self) -> MCPTools:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def connect(self, force: bool = False) -> None:  # noqa: ARG002 - Agno's signature
        """Agno's: here a no-op (sessions are opened by the worker on first use)."""

    async def close(self) -> None:
        """Close this process's sessions to the server (a stdio server's process ends)."""
        loop = asyncio.get_running_loop()
        session = self._sessions.pop(loop, None)
        if session is not None:
            await session.close()

    # -- on the worker ------------------------------------------------------------------------------

    def _named(self, names: Sequence[str] | Mapping[str, Any] | None, tool: str) -> bool:
        """Whether ``names`` names the server's tool ``tool``, by its name or as the model is offered it."""
        return names is not None and (tool in names or self.offered_as(tool) in names)

    def offered_as(self, tool: str) -> str:
        """The name the model is offered the server's tool ``tool`` under (``tool_name_prefix``)."""
        return f"{self.tool_name_prefix}_{tool}" if self.tool_name_prefix else tool

    def requires_approval(self, tool: str, *, destructive: bool) -> bool:
        """Whether a call of the server's tool ``tool`` waits for a decision (fail closed). A tool is
        named by the server's name or by the name the model is offered (with ``tool_name_prefix``)."""
        if destructive:
            return True
        if isinstance(self.approval, dict):
            for name in (tool, self.offered_as(tool)):
                if name in self.approval:
                    return self.approval[name] == "always"
        if self._named(self.requires_confirmation_tools, tool):
            return True
        if isinstance(self.approval, str):
            return self.approval == "always"
        return True

    def kind_of(self, tool: str, *, destructive: bool) -> RequirementKind | None:
        """The human step each call of the server's tool ``tool`` waits for, as configured now."""
        if self._named(self.external_execution_required_tools, tool):
            return "external_execution"
        return "confirmation" if self.requires_approval(tool, destructive=destructive) else None

    async def discover(self, room: int = MAX_TOOLS) -> list[McpToolSpec]:
        """The server's tools as this run records them: names, schemas, and what each call needs; at
        most ``room`` of them, each within hitl's bounds (a tool outside them is left out, and logged)."""

        listed = await self._session().list_tools()
        specs: list[McpToolSpec] = []
        size = 0
        for t in listed:
            if self._named(self.exclude_tools, t.name):
                continue
            if self.include_tools is not None and not self._named(self.include_tools, t.name):
                continue
            name = self.offered_as(t.name)
            schema = dict(t.input_schema or {"type": "object", "properties": {}})
            description = (t.description or t.name)[:MAX_DESCRIPTION_CHARS]
            bytes_ = len(json.dumps(schema, default=str)) + len(description)
            why_not = (f"its name {name!r} is not 1-64 letters, digits, '_' or '-'" if not _TOOL_NAME.match(name)
                       else f"its schema is {bytes_} bytes, over {MAX_TOOL_BYTES}" if bytes_ > MAX_TOOL_BYTES
                       else f"the run's tools would pass {MAX_LISTED_BYTES} bytes" if size + bytes_ > MAX_LISTED_BYTES
                       else f"the run has {room} MCP tools already" if len(specs) >= room else None)
            if why_not is not None:
                log.warning("MCP server %r: tool %r is left out: %s", self.name, t.name[:80], why_not)
                continue
            size += bytes_
            hints = t.annotations
            read_only = bool(hints and hints.read_only_hint)
            destructive = bool(hints and hints.destructive_hint) and not read_only
            specs.append(McpToolSpec(
                server=self.name, name=name, remote_name=t.name, description=description, input_schema=schema,
                kind=self.kind_of(t.name, destructive=destructive),
                idempotent=read_only or bool(hints and hints.idempotent_hint), destructive=destructive))
        return specs

    async def call(self, tool: str, arguments: dict[str, Any]) -> str:
        """Call the server's tool ``tool``: its text, or ``Error: ...`` for the server's own error.

        Raises:
            McpServerError: the server could not be reached (the call was not sent).
            McpOutcomeUnknown: the call was sent and no answer came (no answer in time, the session
                broke): whether the tool ran is not known.
        """
        from mcp.shared.exceptions import MCPError

        try:
            result = await self._session().call_tool(tool, arguments)
        except MCPError as exc:  # the server answered with an error: the tool did not do its work
            return f"Error: {_without_secrets(str(exc))}"
        text = "\n".join(_content_text(c) for c in result.content)
        if not text and result.structured_content is not None:
            text = json.dumps(result.structured_content, ensure_ascii=False)
        return f"Error: {text or 'the tool failed'}" if result.is_error else text

    def _session(self) -> _Session:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None:
            session = self._sessions[loop] = _Session(self)
        return session

    def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        """What ``mcp.Client`` connects to; an HTTP client made here is closed with ``stack``."""
        from mcp.client.stdio import StdioServerParameters

        if self.transport == "stdio":
            assert self.command is not None
            argv = shlex.split(self.command)
            return StdioServerParameters(command=argv[0], args=argv[1:], env=self.env)
        assert self.url is not None
        if self.transport == "sse":
            from mcp.client.sse import sse_client

            return sse_client(self.url, headers=self.headers or None)
        if not self.headers:
            return self.url
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        # The SDK's own client (its timeouts), with the headers; the SDK leaves a client it is given open.
        http = create_mcp_http_client(headers=dict(self.headers))
        stack.push_async_callback(http.aclose)
        return streamable_http_client(self.url, http_client=http)


class McpOutcomeUnknown(McpServerError):
    """The call was sent and no answer came: the tool may or may not have run."""


class _Session:
    """One MCP session of one event loop, held open by a task of its own (the SDK's streams belong to
    the task that opened them) and opened again after its transport died. A call that takes too long
    is given up alone: the session and the other calls on it go on."""

    def __init__(self, toolset: MCPTools) -> None:
        self._toolset = toolset
        self._client: Any = None
        self._holder: asyncio.Task[None] | None = None
        self._closing: asyncio.Event | None = None
        self._lock = asyncio.Lock()

    async def list_tools(self) -> list[Any]:
        async def listing(client: Any) -> list[Any]:
            tools: list[Any] = []
            cursor = None
            while True:
                page = await client.list_tools(cursor=cursor, cache_mode="refresh")
                tools.extend(page.tools)
                cursor = page.next_cursor
                if not cursor or len(tools) >= MAX_TOOLS:
                    return tools

        result: list[Any] = await self._use(listing, "list its tools", sent_is_unknown=False)
        return result

    async def call_tool(self, tool: str, arguments: dict[str, Any]) -> Any:
        timeout = self._toolset.timeout_seconds
        return await self._use(lambda c: c.call_tool(tool, arguments, read_timeout_seconds=timeout),
                               f"call tool {tool!r}", sent_is_unknown=True)

    async def _use(self, what: Any, doing: str, *, sent_is_unknown: bool) -> Any:
        from mcp.shared.exceptions import MCPError

        name = self._toolset.name
        client = await self._open()  # McpServerError: nothing was sent
        unknown = McpOutcomeUnknown if sent_is_unknown else McpServerError
        from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        try:
            return await asyncio.wait_for(what(client), self._toolset.timeout_seconds)
        except MCPError as exc:
            if exc.code not in (CONNECTION_CLOSED, REQUEST_TIMEOUT):
                raise  # the server answered, with an error
            if exc.code == CONNECTION_CLOSED:
                await self.close(only=client)
            raise unknown(f"MCP server {name!r}: could not {doing}: {_reason(exc)}") from None
        except TimeoutError:  # this call alone is given up; the session goes on
            raise unknown(f"MCP server {name!r}: could not {doing}: no answer in "
                          f"{self._toolset.timeout_seconds:g} s") from None
        except Exception as exc:  # noqa: BLE001 - what the transport raises: the session is gone
            await self.close(only=client)
            raise unknown(f"MCP server {name!r}: could not {doing}: {_reason(exc)}") from None

    async def _open(self) -> Any:
        async with self._lock:
            if self._client is not None and self._holder is not None and not self._holder.done():
                return self._client
            ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            closing = asyncio.Event()
            holder = asyncio.create_task(self._hold(ready, closing))
            self._holder, self._closing = holder, closing
            try:
                self._client = await asyncio.wait_for(asyncio.shield(ready), self._toolset.timeout_seconds)
            except TimeoutError:
                closing.set()
                raise McpServerError(f"MCP server {self._toolset.name!r}: could not connect: no answer in "
                                     f"{self._toolset.timeout_seconds:g} s") from None
            except BaseException:
                closing.set()
                raise
            return self._client

    async def _hold(self, ready: asyncio.Future[Any], closing: asyncio.Event) -> None:
        from mcp import Client

        try:
            async with contextlib.AsyncExitStack() as stack:
                transport = self._toolset._transport(stack)
                client = await stack.enter_async_context(
                    Client(transport, read_timeout_seconds=self._toolset.timeout_seconds))
                if not ready.done():
                    ready.set_result(client)
                await closing.wait()
        except BaseException as exc:  # noqa: BLE001 - told to the caller waiting to open; else the session ends
            if not ready.done():
                ready.set_exception(McpServerError(
                    f"MCP server {self._toolset.name!r}: could not connect: {_reason(exc)}"))
            else:
                log.debug("MCP server %r: session ended: %s", self._toolset.name, _reason(exc))
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            if self._holder is asyncio.current_task():  # not a newer session's
                self._client = None

    async def close(self, *, only: Any = None) -> None:
        """End the session (``only``: if it is still the one that client belongs to) and wait for it."""
        async with self._lock:
            if only is not None and self._client is not only:
                return
            holder, closing = self._holder, self._closing
            self._client = None
            if closing is not None:
                closing.set()
        if holder is not None and holder is not asyncio.current_task():
            try:
                await asyncio.wait_for(asyncio.shield(holder), 5)
            except TimeoutError:
                holder.cancel()
            except Exception as exc:  # noqa: BLE001 - it ended badly: already logged by the holder
                log.debug("MCP server %r: closing: %s", self._toolset.name, _reason(exc))


_URL = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^/@\s]*@)?(?P<rest>[^\s?#'\"]*)(?:\?[^\s#'\"]*)?")


def _without_secrets(text: str) -> str:
    """``text`` with each URL's user:password and query string cut (a token may travel in either)."""
    return _URL.sub(lambda m: m.group("scheme") + m.group("rest"), text)


def _reason(exc: BaseException) -> str:
    """The first leaf of an exception group (anyio wraps the transport's errors), as text without secrets."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return _without_secrets(str(exc) or type(exc).__name__)


def _content_text(content: Any) -> str:
    text = getattr(content, "text", None)
    if isinstance(text, str):
        return text
    kind = getattr(content, "type", "content")
    return f"[{kind}]"


def _default_name(command: str | None, url: str | None) -> str:
    if command is not None:
        words = shlex.split(command)
        last = next((w for w in reversed(words) if not w.startswith("-")), words[0] if words else "stdio")
        return "mcp-" + last.rsplit("/", 1)[-1].removesuffix(".py")
    from urllib.parse import urlsplit

    return "mcp-" + (urlsplit(url or "").hostname or "server")


class McpTool(Tool):
    """A tool of an MCP server as one run recorded it: what the model is offered and how a call is planned."""

    def __init__(self, spec: McpToolSpec, toolset: MCPTools | None) -> None:  # noqa: D107 - no function to wrap
        self.fn = _not_local
        self.name = spec.name
        self.description = spec.description
        self.schema = spec.input_schema
        self.spec = spec
        self.toolset = toolset
        self.user_input_fields = []
        self.requires_confirmation = spec.kind == "confirmation"
        self.requires_user_input = False
        self.external_execution = spec.kind == "external_execution"
        self.delegates_to = None
        self.idempotent = spec.idempotent
        self.timeout = timedelta(seconds=toolset.timeout_seconds + 5 if toolset else 15)
        self.max_attempts = toolset.max_attempts if toolset else 1
        self.is_async = True
        self._injected = {}  # nothing injected: the server gets the model's arguments only
        self.approval = None
        self.approval_policy = None

    def __repr__(self) -> str:
        return f"McpTool({self.spec.server!r}, {self.spec.remote_name!r})"

    def validate_arguments(self, arguments: dict[str, Any], *, context: str) -> dict[str, Any]:
        """The arguments checked against the server's input schema (JSON Schema)."""
        if jsonschema is None:
            raise ConfigurationError(f"tool {self.name!r}: checking an MCP tool's arguments needs the MCP SDK: "
                                     "pip install 'hitl[mcp]'")
        try:
            jsonschema.validate(arguments, self.schema)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(p) for p in exc.absolute_path) or "(arguments)"
            raise InvalidDecisionError(f"{context}: arguments for tool {self.name!r} are invalid: {where}: "
                                       f"{exc.message}") from None
        except jsonschema.SchemaError as exc:
            raise InvalidDecisionError(f"{context}: tool {self.name!r} has an input schema that is not valid "
                                       f"JSON Schema: {exc.message}") from None
        return arguments

    def user_input_request(self, arguments: dict[str, Any]) -> None:
        return None

    async def invoke(self, arguments: dict[str, Any], run_context: RunContext | None = None, *, agent: Any = None,
                     team: Any = None) -> str:
        if self.toolset is None:
            raise ConfigurationError(f"tool {self.name!r}: its MCP server {self.spec.server!r} is not the agent's")
        return await self.toolset.call(self.spec.remote_name, arguments)


def _not_local(*_: Any, **__: Any) -> Any:
    raise ConfigurationError("an MCP tool runs on its server: call it through a run")
