"""How ``hitl serve`` runs the app on uvicorn: slow clients timed out, the log redacted.

uvicorn closes an idle keep-alive connection, but it has no limit on how long a client may take to
send a request's headers or its body: 40 connections trickling a byte every few seconds stay open
for good, each holding a socket and a parser. Every connection made by :func:`uvicorn_config` is
guarded instead: its request headers must be complete within ``header_timeout_seconds`` of the
connection (or of the request's first byte, for the next request on a kept-alive connection), and
its body within ``body_timeout_seconds`` of the headers; otherwise it gets ``408 Request Timeout``
and is closed. Once a request is whole, nothing here limits how long it runs (a decision may wait
for its run, an event stream stays open).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hitl.service import redaction
from hitl.service.config import ServiceConfig

__all__ = ["uvicorn_config", "guarded_protocol"]

_TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\nconnection: close\r\n"
              b"content-security-policy: default-src 'none'; frame-ancestors 'none'\r\n"
              b"x-content-type-options: nosniff\r\ncontent-length: %d\r\n\r\n%s")


class _Guarded(HttpToolsProtocol):
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    _deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._timed_out, what, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self, what: str, seconds: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            body = (b'{"type": "urn:hitl:error:RequestTimeout", "title": "Request timeout", "status": 408, '
                    b'"detail": "the request\'s %s took longer than %g s", "error": "RequestTimeout"}'
                    % (what.encode(), seconds))
            self.transport.write(_TIMED_OUT % (len(body), body))
        self.transport.close()

    # uvicorn's own signature (asyncio.Transport), narrower than asyncio.BaseProtocol's BaseTransport.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout, "headers")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # the next request on a kept-alive connection
            self._arm(self.header_timeout, "headers")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout, "body")

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def guarded_protocol(header_timeout: float, body_timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, with these limits on a request's headers and its body."""
    return type("GuardedHttpToolsProtocol", (_Guarded,), {"header_timeout": header_timeout, "body_timeout": body_timeout})


def uvicorn_config(app: Any, config: ServiceConfig, *, host: str, port: int, **options: Any) -> Any:
    """The ``uvicorn.Config`` hitl serves ``app`` with: guarded connections, no proxy headers trusted."""
    import uvicorn

    made = uvicorn.Config(app, host=host, port=port, http=guarded_protocol(config.header_timeout_seconds,
                                                                          config.body_timeout_seconds),
                          proxy_headers=False, **options)
    redaction.install()  # on the handlers uvicorn's logging configuration just made
    return made
