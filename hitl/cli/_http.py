"""The small client of the decision service the CLI uses: one request, its answer or an exit code.

The token travels in the ``Authorization`` header only; it is never printed, and no message
here quotes a request's headers.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import httpx
import typer

from hitl import ids
from hitl.cli._app import ExitCode, already_decided, fail, usage
from hitl.errors import InvalidInputError

DEFAULT_URL = "http://127.0.0.1:8000"

_CODES = {401: ExitCode.REFUSED, 403: ExitCode.REFUSED, 404: ExitCode.NOT_FOUND, 409: ExitCode.CONFLICT,
          413: ExitCode.INVALID, 422: ExitCode.INVALID, 429: ExitCode.REFUSED, 503: ExitCode.UNAVAILABLE}


class ServiceClient:
    """Requests to ``hitl serve`` as the token's principal; every failure becomes a ``typer.Exit``
    with its :class:`~hitl.cli._app.ExitCode`, its message on stderr."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        if token is not None:
            token = token.strip()  # a token read from a file keeps its line break: not part of it
            if not token.isascii() or not token.isprintable() or " " in token:
                # Refused here, never quoted: httpx would put the whole header in its error message.
                usage("the token (--token or HITL_TOKEN) has characters no token has (a space, a line break, a "
                      "control character); it is not shown here")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0))

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._call("GET", path, params=params)

    def post(self, path: str, body: Any, params: dict[str, Any] | None = None) -> Any:
        """POST with a fresh ``Idempotency-Key``: httpx does not resend, but a proxy or load balancer
        in between may, and the service answers a resent request with its first answer."""
        return self._call("POST", path, json=body, params=params, headers={"Idempotency-Key": str(uuid.uuid4())})

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        params = {k: v for k, v in (kwargs.pop("params", None) or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, params=params, **kwargs)
        except httpx.TimeoutException:
            maybe = " it may have been applied: read it before sending it again" if method == "POST" else ""
            raise fail(f"the decision service at {self.url} gave no answer in time ({method} {path});{maybe}",
                       ExitCode.UNAVAILABLE) from None
        except httpx.TransportError as exc:
            # A protocol error's message may quote the request's headers, the token among them.
            why = type(exc).__name__ if isinstance(exc, httpx.LocalProtocolError) else f"{type(exc).__name__}: {exc}"
            raise fail(f"the decision service at {self.url} could not be reached ({why}); "
                       "start it (hitl serve), give --url or HITL_URL, or go straight to Temporal with --temporal",
                       ExitCode.UNAVAILABLE) from None
        if response.is_success:
            return response.json()
        raise _failure(response)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _failure(response: httpx.Response) -> typer.Exit:
    code = _CODES.get(response.status_code, ExitCode.ERROR)
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text[:500] or response.reason_phrase}
    # Problem details (RFC 9457): ``detail`` says what and why (for a 422, every field it failed on).
    detail = body.get("detail") if isinstance(body, dict) else body
    if response.status_code == 409 and isinstance(body, dict) and body.get("resolved_by"):
        detail = already_decided(body["resolved_by"], body.get("resolved_at"), body.get("approval_status"))
    elif response.status_code == 401:
        detail = f"{detail} (give a token with --token or HITL_TOKEN: hitl tokens create NAME -s SCOPE)"
    return fail(f"{detail} [{response.status_code}]", code)


def approval_path(approval_id: str, *rest: str) -> str:
    """``/approvals/<run_id>/<requirement_id>/...`` from an id of two safe segments (``hitl.ids``), each
    quoted; anything else is a usage error before a request is made. (httpx resolves ``.`` and ``..``
    segments: an id like ``x/../<other run>/req-1`` would otherwise decide another approval.)"""
    try:
        run_id, requirement_id = ids.split_approval_id(approval_id)
    except InvalidInputError as exc:
        usage(str(exc))
    return "/".join(["/approvals", quote(run_id, safe=""), quote(requirement_id, safe=""), *rest])


def run_path(run_id: str, *rest: str) -> str:
    """``/runs/<run_id>/...`` from a safe run id (``hitl.ids``), else a usage error."""
    try:
        ids.check_id(run_id, "run id", max_chars=ids.MAX_SEGMENT_CHARS)
    except InvalidInputError as exc:
        usage(str(exc))
    return "/".join(["/runs", quote(run_id, safe=""), *rest])
