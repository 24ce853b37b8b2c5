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
from hitl.settings import environment


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

        from hitl.service import ServiceConfig, create_app
        from hitl.service.server import uvicorn_config
        from hitl.settings import Settings
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
    uvicorn.Server(uvicorn_config(application, config, host=host, port=port, log_level="info")).run()


# ---------------------------------------------------------------------------- tokens
def _token_store(approvals_table: str | None) -> Any:
    from hitl.db.postgres import PostgresDb
    from hitl.security.tokens import TokenStore

    return TokenStore(PostgresDb(approvals_table=approvals_table or environment().approvals_table))


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
                                    created_by=environment().user)
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
    from hitl.security.signing import Signer, public_jwks

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
    from hitl.security.signing import Signer, public_jwks

    kids = list(kid or [])
    try:
        signers = [Signer.from_pem(path, kids[i] if i < len(kids) else None) for i, path in enumerate(keys)]
    except HitlError as exc:
        raise fail(exc) from None
    typer.echo(json.dumps(public_jwks(signers), indent=1))


@audit_app.command("verify")
def audit_verify(
    keys: Annotated[Path | None, typer.Option(
        help="JWKS of the keys decisions may be signed by (default HITL_DECISION_KEYS); without them, signatures "
             "are not checked.")] = None,
    require_signed: Annotated[bool, typer.Option(help="Report decisions that carry no signature too.")] = False,
    allow_unkeyed: Annotated[bool, typer.Option(
        help="With HITL_AUDIT_KEYS: accept events and rows that are not keyed and that no keyed checkpoint covers "
             "(a trail from before the key; `hitl audit checkpoint` covers them for good).")] = False,
    anchor: Annotated[list[Path] | None, typer.Option(
        help="A file of checkpoint statements printed by `hitl audit checkpoint` and kept elsewhere, one a line: "
             "each must still be on the trail (repeat for more).")] = None,
    approvals_table: ApprovalsTable = None, as_json: AsJson = False,
) -> None:
    """Check the trail: every approvals row against its events, every hash chain and seal (keyed with
    HITL_AUDIT_KEYS), every checkpoint and, with decision keys, every decision's signature; exit 1 on any problem."""
    from hitl.db.postgres import PostgresDb

    source = keys or environment().decision_keys
    if require_signed and not source:
        raise fail("--require-signed needs the decision keys: give --keys FILE (a JWKS) or set HITL_DECISION_KEYS")
    anchors = []
    for path in anchor or []:
        try:
            anchors += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except (OSError, ValueError) as exc:
            raise fail(f"--anchor {path}: not a file of checkpoint statements ({exc})") from None
    db = PostgresDb(approvals_table=approvals_table or environment().approvals_table)
    try:
        report = db.verify_trail(allow_unkeyed=allow_unkeyed, anchors=anchors)
        problems = report.problems
        if source:
            problems += db.verify_decisions(str(source), require_signed=require_signed, chain=False)
    except HitlError as exc:
        raise fail(exc) from None
    finally:
        db.close()
    if as_json:
        typer.echo(json.dumps(problems, indent=1, default=str))
    elif problems:
        table = Table("approval", "seq", "kind", "problem")
        for p in problems:
            table.add_row(str(p["approval_id"] or ""), str(p["seq"] or ""), str(p.get("kind", "")), str(p["reason"]))
        Console().print(table)
    else:
        what = "every decision verifies and the trail is intact" if source else "the trail is intact (signatures not checked)"
        typer.echo(f"{what}: {report.approvals} approvals, each as its events say; {report.events} events "
                   f"({report.keyed_events} keyed); {report.checkpoints} checkpoint(s)")
    latest = report.latest_checkpoint
    if latest is not None and not as_json:
        err.print(f"latest checkpoint: {latest['n']} at {latest['statement'].get('at')}, mac {latest['mac'][:16]}...",
                  highlight=False)
    if problems:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(
    approvals_table: ApprovalsTable = None,
    adopt_unkeyed: Annotated[bool, typer.Option(
        help="Vouch for events and rows written without HITL_AUDIT_KEYS, as they stand: once, when the key is "
             "turned on, for the trail from before it. Never in a scheduled job.")] = False,
) -> None:
    """Verify the trail, then record every approval's last event as a checkpoint MACed with HITL_AUDIT_KEYS;
    prints its statement (JSON): keep it elsewhere too, for `hitl audit verify --anchor`."""
    from hitl.db.postgres import PostgresDb

    db = PostgresDb(approvals_table=approvals_table or environment().approvals_table)
    try:
        if db.audit_keys is None:
            err.print("no HITL_AUDIT_KEYS: the checkpoint is plain sha256, which whoever can write the tables can "
                      "recompute; it proves something only as kept elsewhere", highlight=False)
        statement = db.checkpoint(adopt_unkeyed=adopt_unkeyed)
    except HitlError as exc:
        raise fail(exc) from None
    finally:
        db.close()
    stated = statement["statement"]
    err.print(f"checkpoint {statement['n']}: {stated['approvals']} approvals, {stated['changed']} of them changed "
              "since the one before", highlight=False)
    typer.echo(json.dumps(statement, separators=(",", ":")))
