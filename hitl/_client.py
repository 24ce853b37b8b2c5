"""Temporal clients, one per event loop and address, with the pydantic data converter."""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from hitl.config import Settings
from hitl.errors import TemporalUnavailableError

_clients: dict[tuple[int, str, str], Client] = {}


async def connect(settings: Settings) -> Client:
    key = (id(asyncio.get_running_loop()), settings.temporal_address, settings.namespace)
    client = _clients.get(key)
    if client is None:
        try:
            client = await Client.connect(
                settings.temporal_address, namespace=settings.namespace, data_converter=pydantic_data_converter
            )
        except RuntimeError as exc:
            text = str(exc)
            why = "connection refused" if "Connection refused" in text else (text.splitlines() or ["?"])[0][:200]
            raise TemporalUnavailableError(
                f"cannot reach Temporal at {settings.temporal_address} ({why}): start one with `hitl dev`, "
                "or point TEMPORAL_ADDRESS at it"
            ) from None
        _clients[key] = client
    return client


def forget(loop: asyncio.AbstractEventLoop) -> None:
    """Drop the clients made on ``loop`` (it is shutting down)."""
    for key in [k for k in _clients if k[0] == id(loop)]:
        del _clients[key]
