"""Secrets cut out of the service's log lines, wherever a client put them.

Credentials belong in the ``Authorization`` header, which no log line shows. But a client may put
one in a URL: a one-click link's token is in its path by design, and a careless script puts an API
token or a JWT in a query string. uvicorn's access log writes the path and query of every request;
this filter rewrites every line of it (and of the service's own loggers, tracebacks included) before it
is written:

- ``/links/<token>`` becomes ``/links/[redacted]``;
- an API token ``hitl_<id>_<secret>`` keeps its id (it names the token in ``hitl tokens list``):
  ``hitl_<id>_[redacted]``;
- anything shaped like a JWT (``eyJ...``, three dot-separated base64url parts) becomes ``[redacted-jwt]``;
- ``Bearer <credential>`` becomes ``Bearer [redacted]``;
- the value of a query or form parameter whose name says secret (``token``, ``access_token``,
  ``key``, ``secret``, ``password``, ``signature``, ``code``...) becomes ``[redacted]``.
"""

from __future__ import annotations

import logging
import re

__all__ = ["redact", "install"]

_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"/links/[^\s\"'?#/]+"), "/links/[redacted]"),
    (re.compile(r"\b(hitl_[A-Za-z0-9]{12}_)[A-Za-z0-9_\-]+"), r"\1[redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "[redacted-jwt]"),
    (re.compile(r"\b(Bearer|Basic)(\s+|%20|\+)[^\s\"'&]+", re.IGNORECASE), r"\1\2[redacted]"),
    (re.compile(r"(?i)([?&;](?:[a-z0-9_.\-]*(?:token|secret|password|passwd|pwd|key|signature|sig|credential|auth|code)"
                r"[a-z0-9_.\-]*)=)[^&#\s\"']*"), r"\1[redacted]"),
]
_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "hitl", "hitl.service")


def redact(text: str) -> str:
    """``text`` with every credential-shaped part replaced (see the module's docstring)."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and its string arguments before any handler formats them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and not record.exc_text:  # the traceback, as a formatter would write it, redacted
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install() -> None:
    """Put the filter on uvicorn's and the service's loggers, and on every handler they and the root logger
    write through, so that records of child loggers (``hitl.security.oidc``, ``hitl.db.postgres``) are redacted too.
    Idempotent; call it again once uvicorn has configured its logging (``hitl.service.server`` does)."""
    filtered = [logging.getLogger(name) for name in _LOGGERS]
    handlers = [h for logger in (logging.getLogger(), *filtered) for h in logger.handlers]
    for each in (*filtered, *handlers):
        if not any(isinstance(f, RedactingFilter) for f in each.filters):
            each.addFilter(RedactingFilter())
