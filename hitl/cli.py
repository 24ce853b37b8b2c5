"""The ``hitl`` command: a thin layer over the library (``hitl.worker``, ``hitl.devstack``, the client core).

    hitl worker --agents my_pkg.agents          # serve the Agents and Teams of a module
    hitl dev [--agents my_pkg.agents]           # a local stack: Temporal, PostgreSQL, optionally a worker
    hitl runs list --status paused              # runs, by their search attributes
    hitl runs show RUN_ID | hitl runs cancel RUN_ID
    hitl serve --agents my_pkg.agents           # the decision service (REST API, event stream)
    hitl tokens create alice -s approvals:decide | hitl tokens list | hitl tokens revoke ID
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
tokens_app = typer.Typer(help="API tokens of the decision service (straight to its PostgreSQL).", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
keys_app = typer.Typer(help="Signing keys of decisions (strict mode).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(help="Check the audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
err = Console(stderr=True)

Modules = Annotated[list[str], typer.Option("--agents", "-a", metavar="MODULE", help="A module defining Agents (repeat for more).")]
Address = Annotated[str | None, typer.Option(help="Temporal address (default TEMPORAL_ADDRESS or localhost:7233).")]
Namespace = Annotated[str | None, typer.Option(help="Temporal namespace (default TEMPORAL_NAMESPACE or default).")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON for scripts instead of a table.")]
ApprovalsTable = Annotated[str | None, typer.Option(help="The approvals table (default HITL_APPROVALS_TABLE or approvals).")]


def _fail(exc: BaseException | str) -> typer.Exit:
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


@app.command()
def serve(
    agents: Annotated[list[str] | None, typer.Option("--agents", "-a", metavar="MODULE",
                                                     help="Modules whose Agents runs may be started for (POST /runs).")] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).")] = 8000,
    approvals_table: ApprovalsTable = None,
    address: Address = None, namespace: Namespace = None,
) -> None:
    """Run the decision service: the REST API and the approval event stream (DATABASE_URL, TEMPORAL_*)."""
    try:
        import uvicorn

        from hitl.config import Settings
        from hitl.service import ServiceConfig, create_app
    except ImportError as exc:
        raise _fail(f"the service needs its extra: pip install 'hitl[service]' ({exc})") from None
    sys.path.insert(0, os.getcwd())
    try:
        config = ServiceConfig.from_env(temporal=Settings.from_env(temporal_address=address, namespace=namespace),
                                        approvals_table=approvals_table, agent_modules=tuple(agents or ()))
        application = create_app(config)
    except HitlError as exc:
        raise _fail(exc) from None
    except ValueError as exc:  # pydantic: a setting out of range
        raise _fail(f"service settings refused: {exc}") from None
    uvicorn.run(application, host=host, port=port, log_level="info", proxy_headers=False)


# ---------------------------------------------------------------------------- tokens
def _token_store(approvals_table: str | None) -> Any:
    from hitl.db.postgres import PostgresDb
    from hitl.tokens import TokenStore

    return TokenStore(PostgresDb(approvals_table=approvals_table or os.environ.get("HITL_APPROVALS_TABLE") or "approvals"))


def _duration(text: str) -> Any:
    from datetime import timedelta

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        value, unit = float(text[:-1]), units[text[-1]]
    except (ValueError, KeyError, IndexError):
        raise _fail(f"--expires-in {text!r}: a number and a unit, s, m, h or d (90d)") from None
    return timedelta(seconds=value * unit)


@tokens_app.command("create")
def tokens_create(
    principal: Annotated[str, typer.Argument(help="The identity the token proves (the decider of its decisions).")],
    scope: Annotated[list[str], typer.Option("--scope", "-s", help="approvals:read, approvals:decide, runs:start, "
                                             "runs:read, runs:cancel or admin (repeat for more).")],
    expires_in: Annotated[str | None, typer.Option(help="Lifetime, e.g. 90d, 12h (default: none).")] = None,
    approvals_table: ApprovalsTable = None, as_json: AsJson = False,
) -> None:
    """Make an API token; its text is printed this once (only a hash is kept)."""
    store = _token_store(approvals_table)
    try:
        info, secret = store.create(principal, scope, expires_in=_duration(expires_in) if expires_in else None,
                                    created_by=os.environ.get("USER"))
    except HitlError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps({**info.model_dump(mode="json"), "token": secret}))
        return
    err.print(f"token {info.id} for {info.principal} ({', '.join(info.scopes)}); shown once, keep it secret:",
              highlight=False)
    typer.echo(secret)


@tokens_app.command("list")
def tokens_list(
    all_: Annotated[bool, typer.Option("--all", help="Revoked and expired ones too.")] = False,
    approvals_table: ApprovalsTable = None, as_json: AsJson = False,
) -> None:
    """The tokens (never their secrets)."""
    try:
        tokens = _token_store(approvals_table).list(include_inactive=all_)
    except HitlError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps([t.model_dump(mode="json") for t in tokens], indent=1))
        return
    table = Table("id", "principal", "scopes", "created", "expires", "revoked")
    for t in tokens:
        table.add_row(t.id, t.principal, " ".join(t.scopes), t.created_at.isoformat(timespec="seconds"),
                      t.expires_at.isoformat(timespec="seconds") if t.expires_at else "",
                      t.revoked_at.isoformat(timespec="seconds") if t.revoked_at else "")
    Console().print(table)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[str, typer.Argument(help="The token's id (or its full text).")],
                  approvals_table: ApprovalsTable = None) -> None:
    """Revoke a token: refused from the next request on."""
    try:
        info = _token_store(approvals_table).revoke(token_id)
    except HitlError as exc:
        raise _fail(exc) from None
    typer.echo(f"{info.id} revoked")


# ---------------------------------------------------------------------------- keys and audit
@keys_app.command("generate")
def keys_generate(
    out: Annotated[Path, typer.Option(help="Where to write the private key (PEM, readable by its owner only).")],
    kid: Annotated[str | None, typer.Option(help="Key id (default: from the public key).")] = None,
) -> None:
    """Make an Ed25519 signing key for the service (HITL_SIGNING_KEY); prints the JWKS workers trust."""
    from hitl.signing import Signer, public_jwks

    if out.exists():
        raise _fail(f"{out} exists; choose another file (a key is never overwritten)")
    signer = Signer.generate(kid)
    out.touch(mode=0o600)
    out.write_bytes(signer.pem())
    err.print(f"private key {signer.kid} written to {out}; give workers this JWKS (HITL_DECISION_KEYS):", highlight=False)
    typer.echo(json.dumps(public_jwks([signer]), indent=1))


@keys_app.command("public")
def keys_public(
    keys: Annotated[list[Path], typer.Argument(help="PEM private keys: the current one and any still trusted (rotation).")],
    kid: Annotated[list[str] | None, typer.Option(help="Key id of each key, in order (default: from the key).")] = None,
) -> None:
    """Print the JWKS of the public halves of these keys (for HITL_DECISION_KEYS)."""
    from hitl.signing import Signer, public_jwks

    kids = list(kid or [])
    try:
        signers = [Signer.from_pem(path, kids[i] if i < len(kids) else None) for i, path in enumerate(keys)]
    except HitlError as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps(public_jwks(signers), indent=1))


@audit_app.command("verify")
def audit_verify(
    keys: Annotated[Path | None, typer.Option(
        help="JWKS of the keys decisions may be signed by (default HITL_DECISION_KEYS).")] = None,
    require_signed: Annotated[bool, typer.Option(help="Report decisions that carry no signature too.")] = False,
    approvals_table: ApprovalsTable = None, as_json: AsJson = False,
) -> None:
    """Check every decision's signature and the hash chain of the trail; exit 1 on any problem."""
    from hitl.db.postgres import PostgresDb

    source = keys or os.environ.get("HITL_DECISION_KEYS")
    if not source:
        raise _fail("give --keys FILE (a JWKS) or set HITL_DECISION_KEYS")
    db = PostgresDb(approvals_table=approvals_table or os.environ.get("HITL_APPROVALS_TABLE") or "approvals")
    try:
        problems = db.verify_decisions(str(source), require_signed=require_signed)
    except HitlError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(problems, indent=1, default=str))
    elif problems:
        table = Table("approval", "seq", "kind", "problem")
        for p in problems:
            table.add_row(str(p["approval_id"]), str(p["seq"]), str(p.get("kind", "")), str(p["reason"]))
        Console().print(table)
    else:
        typer.echo("every decision verifies and the hash chain is intact")
    if problems:
        raise typer.Exit(1)


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
