"""Temporal clients, one per event loop and address, with the pydantic data converter."""

from __future__ import annotations

import asyncio
import weakref

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from hitl import telemetry
from hitl.config import Settings
from hitl.errors import TemporalUnavailableError

# Per loop, weakly: a loop that ends takes its clients with it, and a new loop that happens to get
# the old one's id() never finds a client bound to the dead loop.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], Client]] = weakref.WeakKeyDictionary()


async def connect(settings: Settings) -> Client:
    mine = _clients.setdefault(asyncio.get_running_loop(), {})
    key = (settings.temporal_address, settings.namespace)
    client = mine.get(key)
    if client is None:
        try:
            client = await Client.connect(
                settings.temporal_address, namespace=settings.namespace, data_converter=pydantic_data_converter,
                interceptors=telemetry.client_interceptors(), runtime=telemetry.runtime(),
            )
        except RuntimeError as exc:
            text = str(exc)
            why = "connection refused" if "Connection refused" in text else (text.splitlines() or ["?"])[0][:200]
            raise TemporalUnavailableError(
                f"cannot reach Temporal at {settings.temporal_address} ({why}): start one with `hitl dev`, "
                "or point TEMPORAL_ADDRESS at it"
            ) from None
        mine[key] = client
    return client


def forget(loop: asyncio.AbstractEventLoop) -> None:
    """Drop the clients made on ``loop`` (it is shutting down)."""
    _clients.pop(loop, None)
