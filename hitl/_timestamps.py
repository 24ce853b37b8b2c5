"""Times that filters take: ISO 8601 only, within what UTC can hold.

pydantic also reads a number as seconds since 1970 (``created_at_lte=0.5``), which the OpenAPI
document, saying ``date-time``, does not admit: a client that sends one has made a mistake, and is
told so instead of getting a listing filtered by a time it did not mean.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

__all__ = ["IsoTime"]

_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _iso_only(value: Any) -> Any:
    if isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("an ISO 8601 time, such as 2026-12-01T00:00:00Z, not a number")
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC) if value.tzinfo is not None else value
    except OverflowError:
        raise ValueError("a time that is still a time in UTC (years 1 to 9999)") from None


IsoTime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_in_utc)]
"""A ``datetime`` field that takes ISO 8601 text only, and only times UTC can hold."""
