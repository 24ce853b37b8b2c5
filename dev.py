"""The README's two commands, on a fresh machine with only Python:

    python dev.py demo    # Temporal, PostgreSQL, the scripted model, a worker, the Quick Start and a team
    python dev.py test    # the whole test suite against real servers (installs Debian's chromium if missing)
    python dev.py test --fast   # the tests that need no server (marker `unit`), in about half a minute
    python dev.py docs          # the manual, built strictly into site/ (a broken link or reference fails)
    python dev.py docs --serve  # the same, served with live reload on http://127.0.0.1:8001

Each makes ``.venv`` and installs the project into it first (skipped when up to date).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STATE = ROOT / ".hitl"
CHROMIUM = "/usr/bin/chromium"


def ensure_venv() -> None:
    stamp = VENV / ".installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    if not PY.exists():
        print("creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing hitl and its dev tools into .venv", flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "-e", f"{ROOT}[dev]"], check=True)
    stamp.write_text(digest)


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def demo() -> int:
    import json
    import time

    from hitl.dev import stack
    from hitl.testing import ScriptedModelServer

    STATE.mkdir(exist_ok=True)
    env = dict(os.environ)
    procs = []
    server = None
    try:
        if not env.get("TEMPORAL_ADDRESS"):
            proc, port = stack.start_temporal(STATE / "temporal.db", ui_port=stack.free_port(), log=STATE / "temporal.log")
            procs.append(proc)
            env["TEMPORAL_ADDRESS"] = f"127.0.0.1:{port}"
            print(f"Temporal dev server on {env['TEMPORAL_ADDRESS']} (history in .hitl/temporal.db)")
        env["DATABASE_URL"] = stack.postgres_url(STATE / "postgres")
        print("PostgreSQL:", "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded, in .hitl/postgres")
        if not env.get("OPENAI_API_KEY"):
            fixtures = json.loads((ROOT / "examples" / "demo_fixtures.json").read_text())
            server = ScriptedModelServer(scripts=fixtures["scripts"], static=fixtures["static"]).start()
            env["OPENAI_BASE_URL"] = server.base_url
            env["HN_API_URL"] = server.base_url.removesuffix("/v1") + "/hn/v0"
            print(f"Model: scripted OpenAI-compatible server on {server.base_url} (set OPENAI_API_KEY for a real one)")
        else:
            print("Model: OpenAI, with OPENAI_API_KEY")
        log = STATE / "worker.log"
        with open(log, "wb") as out:
            worker = subprocess.Popen([str(PY), "worker.py", "--agents", "examples.quickstart",
                                       "--agents", "examples.team_trading"], cwd=ROOT, env=env,
                                      stdout=out, stderr=subprocess.STDOUT)
        procs.append(worker)
        while b"worker ready" not in log.read_bytes():
            if worker.poll() is not None:
                print(log.read_text(), file=sys.stderr)
                return 1
            time.sleep(0.1)
        print("Worker: serving examples.quickstart and examples.team_trading (log in .hitl/worker.log)\n")
        return subprocess.run([str(PY), "starter.py"], cwd=ROOT, env=env).returncode
    finally:
        for proc in reversed(procs):
            stack.stop(proc)
        if server is not None:
            server.stop()


def ensure_chromium() -> None:
    """The browser tests drive Debian's chromium (never a browser download): install it from apt if missing."""
    import shutil

    if Path(CHROMIUM).exists():
        return
    apt = shutil.which("apt-get")
    if apt is None:
        print(f"{CHROMIUM} is missing and there is no apt-get: the browser tests will fail", file=sys.stderr)
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    print("installing chromium from Debian's packages (for the browser tests)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, apt, "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run([*sudo, apt, "install", "-y", "-q", "chromium"], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def test(args: list[str]) -> int:
    if "--fast" in args:  # no server, no browser: the `unit` tests (tests/conftest.py marks them)
        args = [a for a in args if a != "--fast"] + ["-m", "unit"]
    else:
        ensure_chromium()
    rc = subprocess.run([str(PY), "-m", "pytest", *args], cwd=ROOT).returncode
    if rc == 5:
        print("pytest collected no tests: that is a failure here", file=sys.stderr)
        return 1
    return rc


def docs(args: list[str]) -> int:
    """mkdocs.yml's site: strict (warnings are errors); its reference pages are generated by mkdocs_hooks.py."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    mkdocs = [str(PY), "-m", "mkdocs"]
    if "--serve" in args:
        return subprocess.run([*mkdocs, "serve", "--strict", "-a", "127.0.0.1:8001"], cwd=ROOT, env=env).returncode
    return subprocess.run([*mkdocs, "build", "--strict", *args], cwd=ROOT, env=env).returncode


COMMANDS = {"demo": lambda args: demo(), "test": test, "docs": docs}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    if not in_venv():
        ensure_venv()
        return subprocess.run([str(PY), __file__, *sys.argv[1:]], cwd=ROOT).returncode
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
