"""``hitl serve`` and what runs beside it: ``hitl tokens``, ``hitl keys``, ``hitl audit``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hitl.cli._app import Address, ApprovalsTable, AsJson, Namespace, app, audit_app, err, fail, keys_app, tokens_app
from hitl.errors import HitlError
from hitl.identity import SCOPES


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
        raise fail(f"the service needs its extra: pip install 'hitl[service]' ({exc})") from None
    sys.path.insert(0, os.getcwd())
    try:
        config = ServiceConfig.from_env(temporal=Settings.from_env(temporal_address=address, namespace=namespace),
                                        approvals_table=approvals_table, agent_modules=tuple(agents or ()))
        application = create_app(config)
    except HitlError as exc:
        raise fail(exc) from None
    except ValueError as exc:  # pydantic: a setting out of range
        raise fail(f"service settings refused: {exc}") from None
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
        raise fail(f"--expires-in {text!r}: a number and a unit, s, m, h or d (90d)") from None
    return timedelta(seconds=value * unit)


@tokens_app.command("create")
def tokens_create(
    principal: Annotated[str, typer.Argument(help="The identity the token proves (the decider of its decisions).")],
    scope: Annotated[list[str], typer.Option("--scope", "-s", help=", ".join(SCOPES[:-1]) + f" or {SCOPES[-1]}"
                                             " (repeat for more).")],
    expires_in: Annotated[str | None, typer.Option(help="Lifetime, e.g. 90d, 12h (default: none).")] = None,
    approvals_table: ApprovalsTable = None, as_json: AsJson = False,
) -> None:
    """Make an API token; its text is printed this once (only a hash is kept)."""
    from hitl.identity import check_principal_name

    try:  # before any database is opened: group:..., system:... and policy:... are no one's names
        check_principal_name(principal, "principal")
    except HitlError as exc:
        raise fail(exc) from None
    store = _token_store(approvals_table)
    try:
        info, secret = store.create(principal, scope, expires_in=_duration(expires_in) if expires_in else None,
                                    created_by=os.environ.get("USER"))
    except HitlError as exc:
        raise fail(exc) from None
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
        raise fail(exc) from None
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
        raise fail(exc) from None
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
        raise fail(f"{out} exists; choose another file (a key is never overwritten)")
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
        raise fail(exc) from None
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
        raise fail("give --keys FILE (a JWKS) or set HITL_DECISION_KEYS")
    db = PostgresDb(approvals_table=approvals_table or os.environ.get("HITL_APPROVALS_TABLE") or "approvals")
    try:
        problems = db.verify_decisions(str(source), require_signed=require_signed)
    except HitlError as exc:
        raise fail(exc) from None
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
