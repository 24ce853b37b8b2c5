"""A caller's cancellation of an update stays a cancellation (the SDK reports it as an RPC timeout)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError

from hitl._core import runs


class _Handle:
    """What temporalio's handle does when the awaiting task is cancelled mid-update."""

    async def execute_update(self, *args: Any, **kwargs: Any) -> Any:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError as err:
            raise WorkflowUpdateRPCTimeoutOrCancelledError() from err


class _Client:
    def get_workflow_handle(self, run_id: str) -> _Handle:
        return _Handle()


async def test_a_cancelled_first_progress_ends_instead_of_asking_again():
    """_first_progress asks again after each rpc_timeout: a cancellation must not look like one."""
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(runs._first_progress(_Client(), "run-x"), 0.3)  # type: ignore[arg-type]
    assert time.monotonic() - started < 5


async def test_a_cancelled_decision_is_a_cancellation_not_temporal_unavailable():
    task = asyncio.ensure_future(runs._update(_Client(), "run-x", "decide", {}, ["req-1"]))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
