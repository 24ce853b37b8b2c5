"""Connection settings, read once from the environment; explicit arguments override them."""

from __future__ import annotations

import os

from pydantic import BaseModel, Field

__all__ = ["Settings", "DEFAULT_TASK_QUEUE"]

DEFAULT_TASK_QUEUE = "hitl-agents"


class Settings(BaseModel, frozen=True):
    """Where Temporal is and which task queue the agents are served on.

    Environment: ``TEMPORAL_ADDRESS`` (default ``localhost:7233``), ``TEMPORAL_NAMESPACE``
    (``default``), ``TEMPORAL_TASK_QUEUE`` (``hitl-agents``).
    """

    temporal_address: str = Field(min_length=1)
    namespace: str = Field(min_length=1)
    task_queue: str = Field(min_length=1)

    @classmethod
    def from_env(
        cls,
        *,
        temporal_address: str | None = None,
        namespace: str | None = None,
        task_queue: str | None = None,
    ) -> Settings:
        return cls(
            temporal_address=temporal_address or os.environ.get("TEMPORAL_ADDRESS") or "localhost:7233",
            namespace=namespace or os.environ.get("TEMPORAL_NAMESPACE") or "default",
            task_queue=task_queue or os.environ.get("TEMPORAL_TASK_QUEUE") or DEFAULT_TASK_QUEUE,
        )
