"""``hitl worker`` and ``hitl dev``: serve agents, or run a whole local stack."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from hitl.cli._app import Address, Modules, Namespace, app, err, fail
from hitl.errors import HitlError


@app.command()
def worker(agents: Modules, address: Address = None, namespace: Namespace = None) -> None:
    """Serve every Agent (and Team) defined at the top level of the given modules."""
    from hitl.settings import Settings
    from hitl.worker import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, os.getcwd())  # as `python -m` would: the project's own modules are importable
    try:
        asyncio.run(serve(agents, Settings.from_env(temporal_address=address, namespace=namespace)))
    except HitlError as exc:
        raise fail(exc) from None


@app.command()
def dev(
    agents: Annotated[list[str] | None, typer.Option("--agents", "-a", metavar="MODULE",
                                                     help="Also serve these modules' Agents in a worker.")] = None,
    port: Annotated[int, typer.Option(help="Temporal's port (0: any free one).")] = 7233,
    ui_port: Annotated[int | None, typer.Option(help="Temporal UI's port (default: Temporal's + 1000).")] = None,
    data_dir: Annotated[Path, typer.Option(help="Where Temporal's history and PostgreSQL's data are kept.")] = Path(".hitl"),
    postgres: Annotated[bool, typer.Option(help="Start an embedded PostgreSQL unless DATABASE_URL is set.")] = True,
    model_script: Annotated[Path | None, typer.Option(
        help="Serve a scripted OpenAI-compatible model from this JSON file ({\"scripts\": ..., \"static\": ...}).")] = None,
) -> None:
    """Run a local stack until Ctrl-C: Temporal's dev server, PostgreSQL, a scripted model, a worker."""
    from hitl.dev import stack as devstack

    stack = devstack.LocalStack(data_dir=data_dir, port=port, ui_port=ui_port, postgres=postgres, model_script=model_script)
    try:
        env = stack.start()
    except (HitlError, OSError, RuntimeError, TimeoutError) as exc:
        stack.stop()
        raise fail(exc) from None
    try:
        err.print(f"Temporal: {env['TEMPORAL_ADDRESS']} (UI http://127.0.0.1:{stack.ui_port}, history in {data_dir})")
        for key in ("TEMPORAL_ADDRESS", "DATABASE_URL", "OPENAI_BASE_URL"):
            if key in env:
                typer.echo(f"export {key}={env[key]}")
        os.environ.update(env)
        if agents:
            from hitl.settings import Settings
            from hitl.worker import serve

            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            sys.path.insert(0, os.getcwd())
            asyncio.run(serve(agents, Settings.from_env()))
        else:
            err.print("ready; Ctrl-C stops it", highlight=False)
            _wait_for_stop()
    except HitlError as exc:
        raise fail(exc) from None
    finally:
        stack.stop()


def _wait_for_stop() -> None:
    stopped = False

    def stop(*_: Any) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopped:
            signal.pause()
    except KeyboardInterrupt:
        pass
