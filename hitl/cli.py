"""The ``hitl`` command: a thin layer over the library (``hitl.worker``, ``hitl.devstack``, the client core).

    hitl worker --agents my_pkg.agents          # serve the Agents and Teams of a module
    hitl dev [--agents my_pkg.agents]           # a local stack: Temporal, PostgreSQL, optionally a worker
    hitl runs list --status paused              # runs, by their search attributes
    hitl runs show RUN_ID | hitl runs cancel RUN_ID
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hitl.errors import HitlError

app = typer.Typer(help="Durable human-in-the-loop for LLM agents, on Temporal.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
runs_app = typer.Typer(help="List, show and cancel runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
err = Console(stderr=True)

Modules = Annotated[list[str], typer.Option("--agents", "-a", metavar="MODULE", help="A module defining Agents (repeat for more).")]
Address = Annotated[str | None, typer.Option(help="Temporal address (default TEMPORAL_ADDRESS or localhost:7233).")]
Namespace = Annotated[str | None, typer.Option(help="Temporal namespace (default TEMPORAL_NAMESPACE or default).")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON for scripts instead of a table.")]


def _fail(exc: BaseException) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


@app.command()
def worker(agents: Modules, address: Address = None, namespace: Namespace = None) -> None:
    """Serve every Agent (and Team) defined at the top level of the given modules."""
    from hitl.config import Settings
    from hitl.worker import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, os.getcwd())  # as `python -m` would: the project's own modules are importable
    try:
        asyncio.run(serve(agents, Settings.from_env(temporal_address=address, namespace=namespace)))
    except HitlError as exc:
        raise _fail(exc) from None


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
    from hitl import devstack

    stack = devstack.LocalStack(data_dir=data_dir, port=port, ui_port=ui_port, postgres=postgres, model_script=model_script)
    try:
        env = stack.start()
    except (HitlError, OSError, RuntimeError, TimeoutError) as exc:
        stack.stop()
        raise _fail(exc) from None
    try:
        err.print(f"Temporal: {env['TEMPORAL_ADDRESS']} (UI http://127.0.0.1:{stack.ui_port}, history in {data_dir})")
        for key in ("TEMPORAL_ADDRESS", "DATABASE_URL", "OPENAI_BASE_URL"):
            if key in env:
                typer.echo(f"export {key}={env[key]}")
        os.environ.update(env)
        if agents:
            from hitl.config import Settings
            from hitl.worker import serve

            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            sys.path.insert(0, os.getcwd())
            asyncio.run(serve(agents, Settings.from_env()))
        else:
            err.print("ready; Ctrl-C stops it", highlight=False)
            _wait_for_stop()
    except HitlError as exc:
        raise _fail(exc) from None
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


# ---------------------------------------------------------------------------- runs
def _client_call(fn: Any, address: str | None, namespace: str | None) -> Any:
    from hitl import _client
    from hitl.config import Settings

    async def call() -> Any:
        client = await _client.connect(Settings.from_env(temporal_address=address, namespace=namespace))
        return await fn(client)

    try:
        return asyncio.run(call())
    except HitlError as exc:
        raise _fail(exc) from None


@runs_app.command("list")
def runs_list(
    status: Annotated[str | None, typer.Option(help="running, paused, completed, cancelled or error.")] = None,
    tool: Annotated[str | None, typer.Option(help="Only runs waiting on this tool.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent's (or team's) runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    address: Address = None, namespace: Namespace = None, as_json: AsJson = False,
) -> None:
    """Runs by their search attributes, newest first."""
    from hitl import _runs

    found = _client_call(lambda c: _runs.list_runs(c, status=status, tool=tool, agent=agent, limit=limit), address, namespace)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in found], indent=1))
        return
    table = Table("run id", "agent", "status", "pending tools", "next deadline", "started")
    for r in found:
        table.add_row(r.run_id, r.agent_name or "", r.status, ", ".join(r.pending_tools),
                      r.next_deadline.isoformat() if r.next_deadline else "", r.started_at.isoformat() if r.started_at else "")
    Console().print(table)


@runs_app.command("show")
def runs_show(run_id: str, address: Address = None, namespace: Namespace = None, as_json: AsJson = False) -> None:
    """One run: its status, answer and requirements."""
    from hitl import _runs

    run = _client_call(lambda c: _runs.get(c, run_id), address, namespace)
    if as_json:
        typer.echo(run.model_dump_json(indent=1))
        return
    console = Console()
    console.print(f"[bold]{run.run_id}[/bold] {run.agent_name} [cyan]{run.status}[/cyan]", highlight=False)
    if run.error:
        console.print(f"[red]{run.error}[/red]", highlight=False)
    if run.content:
        console.print(run.content, highlight=False)
    if run.requirements:
        table = Table("requirement", "kind", "tool", "arguments", "decision")
        for r in run.requirements:
            decided = f"{r.resolution} by {r.resolved_by}" if r.resolution and r.resolved_by else (r.resolution or "pending")
            table.add_row(r.id, r.kind, r.tool_execution.tool_name, json.dumps(r.tool_execution.arguments), decided)
        console.print(table)


@runs_app.command("cancel")
def runs_cancel(
    run_id: str, reason: Annotated[str | None, typer.Option(help="Why, for the audit trail.")] = None,
    address: Address = None, namespace: Namespace = None,
) -> None:
    """Cancel a run: its pending approvals become cancelled."""
    from hitl import _runs

    run = _client_call(lambda c: _runs.cancel(c, run_id, reason=reason), address, namespace)
    typer.echo(f"{run.run_id} {run.status}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
