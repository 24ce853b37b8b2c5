"""Traces and metrics: what every Temporal client and worker hitl makes is built with (being written)."""

from __future__ import annotations

from typing import Any

from temporalio.runtime import Runtime


def client_interceptors() -> list[Any]:
    """Interceptors for every Temporal client hitl makes (those that are also worker interceptors
    are used by the workers made from that client)."""
    return []


def runtime() -> Runtime | None:
    """The SDK runtime (its metrics exporter) for every client; None: the SDK's default."""
    return None
