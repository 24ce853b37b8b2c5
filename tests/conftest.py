"""Real servers for the tests: Temporal's dev server, PostgreSQL and the scripted model server."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from hitl._core import client as _client
from hitl.dev import stack
from hitl.settings import Settings
from hitl.testing import ScriptedModelServer
from hitl.worker import create_worker

ROOT = Path(__file__).resolve().parent.parent
# A test's runs are served by the workers it starts: a test process never serves them itself
# (hitl._core.inline), or a test of a run no worker takes would find one. The porting tests turn it on.
# In the environment, not by hitl._core.inline.disable(), so that the processes the tests start ({**os.environ, ...})
# run with it off as well; a test that wants a child to serve itself sets it in that child's environment.
os.environ["HITL_INLINE_WORKER"] = "off"


# What each test needs, from the fixtures it uses (their closure, so a fixture built on another
# counts): `python dev.py test --fast` runs the `unit` ones, which need no server. A module whose
# tests start servers of their own says so with `pytestmark = pytest.mark.slow` (or another marker).
_NEEDS = {"temporal": {"temporal_server"}, "postgres": {"database_url"}, "browser": {"browser"}}
_SERVERS = ("temporal", "postgres", "browser", "slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in _NEEDS.items():
            if used & fixtures:
                item.add_marker(marker)
        if not any(item.get_closest_marker(m) for m in _SERVERS):
            item.add_marker("unit")


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real ``temporal server start-dev``, persisted to a file."""
    data = tmp_path_factory.mktemp("temporal")
    proc, port = stack.start_temporal(data / "temporal.db", log=data / "temporal.log")
    address = f"127.0.0.1:{port}"
    # In the environment, for the whole session: what is tested is code given no address, which reads it there
    # (agents made with no temporal_address=, a module's own agents, the service's Settings.from_env()), and the
    # processes the tests start ({**os.environ, ...}) inherit it.
    os.environ["TEMPORAL_ADDRESS"] = address
    info = {"proc": proc, "port": port, "address": address, "db": data / "temporal.db", "log": data / "temporal.log"}
    yield info
    stack.stop(info["proc"])


@pytest.fixture(scope="session")
def model_server() -> Iterator[ScriptedModelServer]:
    server = ScriptedModelServer().start()
    yield server
    server.stop()


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    """Debian's chromium (apt; never a browser download), headless, driven by Playwright."""
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `python dev.py test` installs Debian's chromium (apt-get install chromium)")
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield launched
        await launched.close()


@pytest.fixture
async def client(temporal_server: dict[str, Any]) -> Client:
    return await _client.connect(Settings.from_env(temporal_address=temporal_server["address"]))


@pytest.fixture
def tool_log(tmp_path: Path) -> Path:
    """A file the tools of subprocess workers append to: what ran, where."""
    path = tmp_path / "tools.log"
    path.touch()
    return path


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def script(model_server: ScriptedModelServer) -> Callable[..., str]:
    """Register a script under a fresh model name; returns that name."""

    def register(*rules: dict[str, Any]) -> str:
        name = f"script-{uuid.uuid4().hex[:8]}"
        model_server.add_script(name, {"rules": list(rules)})
        return name

    return register


@pytest.fixture
def running_worker(client: Client, task_queue: str) -> Callable[[], Any]:
    """``async with running_worker():`` serves the run workflow on the test's task queue."""

    @asynccontextmanager
    async def run() -> AsyncIterator[None]:
        async with create_worker(client, task_queue):
            yield

    return run


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``DATABASE_URL`` when set, else a real embedded PostgreSQL."""
    url = stack.postgres_url(tmp_path_factory.mktemp("pg") / "data")
    # In the environment, for the whole session: PostgresDb() given no URL reads it there (a module's own agents,
    # tests.service_agents' say), and the processes the tests start inherit it.
    os.environ["DATABASE_URL"] = url
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Any]:
    """A PostgresDb on fresh tables of the real PostgreSQL, migrated; every pool it opened closed after."""
    from hitl import PostgresDb

    database = PostgresDb(database_url, approvals_table=f"approvals_{uuid.uuid4().hex[:8]}")
    database.migrate()
    yield database
    await database.aclose()  # the async pool the worker's mirror opened on this loop
    database.close()


@pytest.fixture
def make_agent(model_server: ScriptedModelServer, task_queue: str, temporal_server: dict[str, Any]) -> Callable[..., Any]:
    """An Agent on the test's task queue whose model is a script of the scripted server."""
    from hitl import Agent, OpenAIChat

    def make(model: str, tools: list[Any], api: Any = OpenAIChat, **kwargs: Any) -> Agent:
        return Agent(
            model=api(id=model, base_url=model_server.base_url),
            tools=tools,
            task_queue=task_queue,
            name=kwargs.pop("name", f"agent-{uuid.uuid4().hex[:8]}"),
            **kwargs,
        )

    return make


class RunningService:
    """The decision service on a real port of this machine, in a thread of its own (its own event loop)."""

    def __init__(self, db: Any, **settings: Any) -> None:
        import threading

        import uvicorn

        from hitl.security.tokens import TokenStore
        from hitl.service import ServiceConfig, create_app

        self.db = db
        self.tokens = TokenStore(db)
        config = ServiceConfig(database_url=db.db_url, approvals_table=db.approvals_table,
                               temporal=settings.pop("temporal", None) or Settings.from_env(), **settings)
        self.app = create_app(config)
        self.port = stack.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        from hitl.service.server import uvicorn_config

        self._server = uvicorn.Server(uvicorn_config(self.app, config, host="127.0.0.1", port=self.port,
                                                     log_level="warning", lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        import time

        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.02)

    def token(self, principal: str, *scopes: str, **options: Any) -> str:
        return self.tokens.create(principal, scopes or ("approvals:read", "approvals:decide"), **options)[1]

    def client(self, token: str | None = None, **options: Any) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=options.pop("timeout", 60), **options)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


@pytest.fixture
def service(db: Any, temporal_server: dict[str, Any]) -> Iterator[RunningService]:
    """The decision service over the test's own tables, on a free port."""
    running = RunningService(db)
    yield running
    running.stop()


@pytest.fixture
def mcp_http_server(tmp_path: Path) -> Iterator[Any]:
    """tests/mcp_servers.py over streamable HTTP on a free port: ``url``, ``log`` (what its tools ran), ``stop()``."""
    import socket
    import subprocess
    import time

    mcp_log = tmp_path / "mcp-http.log"
    root = Path(__file__).resolve().parents[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tests.mcp_servers", "http", str(port)], cwd=root,
                            env={"MCP_LOG": str(mcp_log), "PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)

    class Server:
        url = f"http://127.0.0.1:{port}/mcp"
        log = mcp_log

        @staticmethod
        def stop() -> None:
            proc.kill()
            proc.wait()

    yield Server
    Server.stop()
