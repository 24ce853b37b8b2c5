"""A scripted OpenAI-compatible HTTP server: Chat Completions and Responses, streamed when asked.

Tests and the offline demo point the real ``openai`` client at it. The request's ``model`` names
the script (see :mod:`hitl.testing.script`); scripts are registered with ``POST /scripts/NAME``
or :meth:`ScriptedModelServer.add_script`. Every request is kept for tests to inspect.

Run alone: ``python -m hitl.testing.scripted_model --port 8011 --scripts scripts.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hitl.testing.script import Script, choose, render_arguments, render_text


class ScriptedModelServer:
    """Serves scripted turns on ``127.0.0.1:port`` from a background thread."""

    def __init__(
        self, port: int = 0, scripts: dict[str, Any] | None = None, static: dict[str, Any] | None = None
    ) -> None:
        self.scripts: dict[str, Script] = {}
        self.static: dict[str, Any] = dict(static or {})
        """Fixed JSON answers to GET by path: stand-ins for the APIs a demo's tools call."""
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        """The Authorization header of each request, in order (to check which key a client sent)."""
        self._failures: dict[str, int] = {}
        self._conversations: dict[str, list[dict[str, Any]]] = {}
        """Responses API conversations by response id (``previous_response_id``, as OpenAI keeps them)."""
        self._lock = threading.Lock()
        for name, script in (scripts or {}).items():
            self.add_script(name, script)
        server = self

        class Handler(_Handler):
            owner = server

        self._http = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._http.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def add_script(self, name: str, script: Script | dict[str, Any]) -> None:
        with self._lock:
            self.scripts[name] = script if isinstance(script, Script) else Script.model_validate(script)

    def start(self) -> ScriptedModelServer:
        self._thread = threading.Thread(target=self._http.serve_forever, name="scripted-model", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r.get("model") == model]

    def _with_previous(self, body: dict[str, Any]) -> dict[str, Any]:
        """A Responses request that continues an earlier response, with that conversation put back in front."""
        previous = body.get("previous_response_id")
        if not previous:
            return body
        with self._lock:
            earlier = list(self._conversations.get(str(previous), []))
        return {**body, "input": [*earlier, *_items(body.get("input", []))]}

    # ------------------------------------------------------------------ answering
    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.requests.append(body)
            script = self.scripts.get(str(body.get("model")))
        if script is None:
            return 404, _error(f"The model `{body.get('model')}` does not exist", "model_not_found"), {}
        if path.endswith("/responses"):
            body = self._with_previous(body)
        messages = _chat_messages(body) if path.endswith("/responses") else list(body.get("messages", []))
        turn, index, found, results = choose(script, messages)
        if turn.fail is not None:
            key = hashlib.sha256(json.dumps([body.get("model"), messages], sort_keys=True).encode()).hexdigest()
            with self._lock:
                seen = self._failures.get(key, 0)
                self._failures[key] = seen + 1
            if seen < turn.fail.times and not turn.fail.truncate:
                headers = {"retry-after": str(turn.fail.retry_after)} if turn.fail.retry_after is not None else {}
                return turn.fail.status, _error(turn.fail.message, "scripted"), headers
            truncate = seen < turn.fail.times and turn.fail.truncate
        else:
            truncate = False
        calls = [
            (f"call_{index}_{i}", c.name, json.dumps(render_arguments(c.arguments, found, results)))
            for i, c in enumerate(turn.tool_calls)
        ]
        content = render_text(turn.content, found, results) if turn.content is not None else None
        cut = {_TRUNCATE: "1"} if truncate else {}
        if path.endswith("/responses"):
            answer = _responses_body(body, content, calls)
            with self._lock:  # what a later request's previous_response_id continues from
                self._conversations[answer["id"]] = [*_items(body.get("input", [])), *answer["output"]]
        else:
            answer = _chat_body(body, content, calls)
        if body.get("stream"):
            return 200, {_STREAM: _stream_events(path, answer, content, calls)}, cut
        return 200, answer, cut


_TRUNCATE = "x-hitl-truncate"
_STREAM = "__stream__"
"""An answer sent as server-sent events (the request asked ``stream: true``): the events to send."""


def _pieces(text: str, n: int = 3) -> list[str]:
    """A text in ``n`` pieces, as a model streams it."""
    size = max(1, -(-len(text) // n))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _stream_events(path: str, answer: dict[str, Any], content: str | None, calls: list[tuple[str, str, str]]
                   ) -> list[dict[str, Any]]:
    """The same answer as a stream: Chat Completions chunks, or Responses events ending with the whole response."""
    if path.endswith("/responses"):
        events: list[dict[str, Any]] = [{"type": "response.created", "sequence_number": 0,
                                         "response": {**answer, "status": "in_progress", "output": []}}]
        for piece in _pieces(content) if content else []:
            events.append({"type": "response.output_text.delta", "sequence_number": len(events), "item_id": "msg_1",
                           "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []})
        events.append({"type": "response.completed", "sequence_number": len(events), "response": answer})
        return events
    base = {k: answer[k] for k in ("id", "object", "created", "model")} | {"object": "chat.completion.chunk"}
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    for piece in _pieces(content) if content else []:
        chunks.append({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
    for i, (cid, name, args) in enumerate(calls):
        chunks.append({**base, "choices": [{"index": 0, "finish_reason": None, "delta": {"tool_calls": [
            {"index": i, "id": cid, "type": "function", "function": {"name": name, "arguments": ""}}]}}]})
        for piece in _pieces(args, 2):
            chunks.append({**base, "choices": [{"index": 0, "finish_reason": None, "delta": {"tool_calls": [
                {"index": i, "function": {"arguments": piece}}]}}]})
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if calls else "stop"}]})
    return chunks


class _Handler(BaseHTTPRequestHandler):
    owner: ScriptedModelServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle and delayed ACKs add ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(body, dict) and _STREAM in body:
            self._send_events(body[_STREAM])
            return
        data = json.dumps(body).encode()
        headers = dict(headers or {})
        if headers.pop(_TRUNCATE, None):
            data = data[: len(data) // 2]
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _send_events(self, events: list[dict[str, Any]]) -> None:
        """Server-sent events, one write each (a short pause between them, as a model streams)."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        for event in events:
            name = f"event: {event['type']}\n" if "type" in event else ""
            self.wfile.write(f"{name}data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.01)
        if not any("type" in e for e in events):
            self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path in self.owner.static:
            self._send(200, self.owner.static[self.path])
        elif self.path.rstrip("/") in ("/health", "/v1/models"):
            self._send(200, {"object": "list", "data": [{"id": n, "object": "model"} for n in self.owner.scripts]})
        else:
            self._send(404, _error(f"no route {self.path}", "not_found"))

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._send(400, _error("body is not JSON", "invalid_request_error"))
            return
        path = self.path.split("?")[0].rstrip("/")
        if path.startswith("/scripts/"):
            try:
                self.owner.add_script(path.removeprefix("/scripts/"), body)
            except ValueError as exc:
                self._send(400, _error(str(exc), "invalid_request_error"))
                return
            self._send(200, {"ok": True})
        elif path in ("/v1/chat/completions", "/v1/responses"):
            self.owner.authorizations.append(self.headers.get("authorization"))
            self._send(*self.owner.answer(path, body))
        else:
            self._send(404, _error(f"no route {self.path}", "not_found"))


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "code": code, "param": None}}


def _items(raw: Any) -> list[dict[str, Any]]:
    """A Responses API input as a list of items (a plain string is one user message)."""
    return [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw or [])


def _chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A Responses API input as Chat messages, so one script serves both APIs."""
    raw = body.get("input", [])
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    messages: list[dict[str, Any]] = []
    for item in raw:
        kind = item.get("type")
        if kind == "function_call":
            messages.append({"role": "assistant", "content": None, "tool_calls": [item]})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "content": item.get("output", "")})
        elif "role" in item:
            messages.append({"role": item["role"], "content": item.get("content")})
    # Consecutive function calls belong to one assistant turn.
    merged: list[dict[str, Any]] = []
    for m in messages:
        if m.get("tool_calls") and merged and merged[-1].get("tool_calls"):
            merged[-1]["tool_calls"].extend(m["tool_calls"])
        else:
            merged.append(m)
    return merged


def _chat_body(body: dict[str, Any], content: str | None, calls: list[tuple[str, str, str]]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}} for cid, name, args in calls
        ]
    return {
        "id": f"chatcmpl-{int(time.time() * 1000)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _responses_body(body: dict[str, Any], content: str | None, calls: list[tuple[str, str, str]]) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if content is not None:
        output.append({
            "type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": content, "annotations": []}],
        })
    for cid, name, args in calls:
        output.append({"type": "function_call", "id": f"fc_{cid}", "call_id": cid, "name": name,
                       "arguments": args, "status": "completed"})
    return {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": int(time.time()),
        "model": body.get("model"),
        "status": "completed",
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": body.get("tools", []),
        "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2,
                  "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Scripted OpenAI-compatible model server")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--fixtures", help='JSON file: {"scripts": {name: script}, "static": {path: json}}')
    args = parser.parse_args()
    fixtures = json.loads(open(args.fixtures).read()) if args.fixtures else {}
    server = ScriptedModelServer(args.port, fixtures.get("scripts"), fixtures.get("static")).start()
    print(f"scripted model server on {server.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
