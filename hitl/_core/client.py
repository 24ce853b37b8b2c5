"""Temporal clients, one per event loop and connection, with hitl's data converter (``hitl.security.codec``)."""

from __future__ import annotations

import asyncio
import atexit
import gc
import weakref

from temporalio.client import Client

from hitl.errors import TemporalUnavailableError
from hitl.observability import telemetry
from hitl.security import codec
from hitl.settings import Settings

# Per loop, weakly: a loop that ends takes its clients with it, and a new loop that happens to get
# the old one's id() never finds a client bound to the dead loop.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, ...], Client]] = weakref.WeakKeyDictionary()


_exit_hook = False


def _forget_stopped() -> None:
    """At exit, while the interpreter is whole: free the clients of loops that no longer run.

    A caller's ``asyncio.run(main())`` leaves its loop closed but referenced, and its clients with it:
    freed during interpreter finalization, their native threads could call back into a half-torn-down
    Python and abort the process (exit -6 or -11) after the program's work was done (measured: 4 of 24
    scripts run six at a time). hitl's own loop thread frees its clients when it stops (``hitl._core.sync``).
    """
    for loop in list(_clients):
        if loop.is_closed() or not loop.is_running():
            _clients.pop(loop, None)
    gc.collect()


async def connect(settings: Settings) -> Client:
    global _exit_hook
    if not _exit_hook:
        _exit_hook = True
        atexit.register(_forget_stopped)
    mine = _clients.setdefault(asyncio.get_running_loop(), {})
    # The converter is part of the key: a client made before the key ring changed must not be reused.
    key = (*settings.connection_key(), codec.converter_key())
    client = mine.get(key)
    if client is None:
        try:
            client = await Client.connect(
                **settings.connect_args(), data_converter=codec.data_converter(),
                interceptors=telemetry.client_interceptors(), runtime=telemetry.runtime(),
            )
        except RuntimeError as exc:
            text = str(exc)
            if settings.api_key is not None:  # never echo a credential, whatever the transport's message says
                text = text.replace(settings.api_key.get_secret_value(), "***")
            why = "connection refused" if "Connection refused" in text else (text.splitlines() or ["?"])[0][:200]
            raise TemporalUnavailableError(
                f"cannot reach Temporal at {settings.temporal_address} ({why}): start one with `hitl dev`, "
                "or point TEMPORAL_ADDRESS (or a TEMPORAL_PROFILE) at it"
            ) from None
        mine[key] = client
    return client


def forget(loop: asyncio.AbstractEventLoop) -> None:
    """Drop the clients made on ``loop`` (it is shutting down)."""
    _clients.pop(loop, None)
