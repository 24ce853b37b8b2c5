"""Model providers."""

from hitl.models.openai import OpenAIChat, OpenAIResponses

__all__ = ["OpenAIChat", "OpenAIResponses"]
