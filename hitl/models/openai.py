"""OpenAI models, through the official client: Chat Completions and Responses.

These are settings only; the call happens in a worker's activity (``activities/model.py``), so
an API key given here is kept in the worker's memory and never crosses into Temporal history.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from hitl.settings import environment

__all__ = ["OpenAIChat", "OpenAIResponses", "OpenAIModel"]


class OpenAIModel(BaseModel):
    """Settings shared by both APIs. ``base_url``/``api_key`` default to ``OPENAI_BASE_URL``/``OPENAI_API_KEY``."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    api: Literal["chat", "responses"] = "chat"
    base_url: str | None = None
    api_key: SecretStr | None = None
    temperature: float | None = None
    timeout: float = Field(default=120.0, gt=0, description="Seconds for one HTTP request.")

    def __init__(self, id: str = "gpt-4o", **data: object) -> None:  # noqa: A002 - Agno's argument name
        super().__init__(id=id, **data)

    def resolved_base_url(self) -> str | None:
        return self.base_url or environment().openai_base_url or None

    def resolved_api_key(self) -> str:
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        # Servers that need no key (the scripted one, local ones) still get a non-empty string.
        key = environment().openai_api_key
        return key.get_secret_value() if key is not None else "not-needed"


class OpenAIChat(OpenAIModel):
    """The Chat Completions API (``/v1/chat/completions``)."""

    api: Literal["chat", "responses"] = "chat"


class OpenAIResponses(OpenAIModel):
    """The Responses API (``/v1/responses``)."""

    api: Literal["chat", "responses"] = "responses"
