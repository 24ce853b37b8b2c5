"""Testing aids shipped with hitl: a scripted OpenAI-compatible model server, and checks and decisions
for tests of an agent's approval flow. Installing hitl also installs a pytest plugin
(``hitl.dev.pytest_plugin``) whose fixtures run the stack: see the Testing guide."""

from hitl.testing.assertions import adecide, assert_paused, decide
from hitl.testing.scripted_model import ScriptedModelServer

__all__ = ["ScriptedModelServer", "adecide", "assert_paused", "decide"]
