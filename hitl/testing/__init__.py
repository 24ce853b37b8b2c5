"""Testing aids shipped with hitl: a scripted OpenAI-compatible model server."""

from hitl.testing.scripted_model import ScriptedModelServer

__all__ = ["ScriptedModelServer"]
