"""Where the ``approvals`` and ``runs`` commands go: the decision service over HTTP (the default),
or straight to Temporal and PostgreSQL with ``--temporal``, through the client core the service
itself uses (``hitl._core.approvals``, ``hitl._core.runs``).

Straight to Temporal there is no credential for a person: the decider is the name given with
``--as``, a claim the operator makes with their Temporal access, not a proof. It is recorded as
such (``resolved_by``); the approval's own policy still checks that name; workers in strict mode
refuse it unless ``--sign`` signs it with ``HITL_SIGNING_KEY``, the key the service signs with:
never implicitly, since a signed claim is one strict workers believe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from hitl.cli._app import ExitCode, fail, fail_hitl, usage
from hitl.cli._http import DEFAULT_URL, ServiceClient
from hitl.errors import HitlError
from hitl.settings import environment

if TYPE_CHECKING:
    from temporalio.client import Client

    from hitl.db.postgres import PostgresDb
    from hitl.identity import Principal
    from hitl.security.signing import Signer

T = TypeVar("T")

Url = Annotated[str | None, typer.Option("--url", metavar="URL", show_default=False,
                                         help=f"The decision service (default HITL_URL or {DEFAULT_URL}).")]
Token = Annotated[str | None, typer.Option("--token", metavar="TOKEN", show_default=False,
                                           help="API token (hitl tokens create) or OIDC bearer token; default HITL_TOKEN. "
                                                "Never printed.")]
Temporal = Annotated[bool, typer.Option("--temporal", help="Straight to Temporal (and PostgreSQL, DATABASE_URL), "
                                        "not through the decision service.")]
Table = Annotated[str | None, typer.Option(help="With --temporal: the approvals table (default HITL_APPROVALS_TABLE "
                                           "or approvals).")]
As = Annotated[str | None, typer.Option(
    "--as", metavar="NAME", show_default=False,
    help="With --temporal: decide as NAME. A claim made with your Temporal access, not a proof: recorded as "
         "resolved_by and checked against the approval's approvers, refused by strict-mode workers unless "
         "signed with --sign.")]
Sign = Annotated[bool, typer.Option(
    "--sign", help="With --temporal --as: sign the claim with HITL_SIGNING_KEY (the service's key), so strict-mode "
                   "workers take it. Whoever holds that key can decide as anyone: use it only where the service would.")]


@dataclass
class Target:
    """The options every ``approvals``/``runs`` command takes, and the connection they choose."""

    url: str | None = None
    token: str | None = None
    temporal: bool = False
    address: str | None = None
    namespace: str | None = None
    approvals_table: str | None = None
    as_name: str | None = None
    sign: bool = False

    def __post_init__(self) -> None:
        # Temporal's own options say where Temporal is: giving one means going there
        # (and `hitl runs ... --address X`, as it was before the service existed, keeps working).
        self.temporal = self.temporal or self.address is not None or self.namespace is not None
        if not self.temporal:
            for flag, value in (("--as", self.as_name), ("--approvals-table", self.approvals_table),
                                ("--sign", self.sign or None)):
                if value is not None:
                    usage(f"{flag} goes with --temporal; through the service you act as your token's principal")
        if self.sign and not environment().signing_key:
            usage("--sign needs HITL_SIGNING_KEY: the PEM file of the key the service signs decisions with")

    def service(self, timeout: float = 60.0) -> ServiceClient:
        env = environment()
        token = env.token.get_secret_value() if env.token is not None else None
        return ServiceClient(self.url or env.url or DEFAULT_URL, self.token or token, timeout=timeout)

    def read(self, path: str, direct: Callable[[Direct], Awaitable[Any]], params: dict[str, Any] | None = None) -> Any:
        """``GET path`` from the service; with ``--temporal``, what ``direct`` makes of Temporal and PostgreSQL."""
        if self.temporal:
            return self.direct(direct)
        with self.service() as service:
            return service.get(path, params)

    def direct(self, fn: Callable[[Direct], Awaitable[T]], *, decider: bool = False) -> T:
        """Run ``fn`` against Temporal and PostgreSQL; hitl's errors become exit codes.

        ``decider``: the command decides, so it needs ``--as`` (nobody is assumed).
        """
        if decider and not self.as_name:
            usage("--temporal decides as the name given with --as NAME (a claim, not a proof: see --help)")
        try:
            return asyncio.run(self._direct(fn))
        except HitlError as exc:
            raise fail_hitl(exc) from None
        except OSError as exc:  # a PEM file that cannot be read, a socket refused
            raise fail(exc, ExitCode.UNAVAILABLE if isinstance(exc, ConnectionError) else ExitCode.ERROR) from None
        except Exception as exc:
            import psycopg
            from pydantic import ValidationError

            if isinstance(exc, ValidationError):  # a filter out of range: what the service answers with 422
                raise fail(exc, ExitCode.INVALID) from None
            if isinstance(exc, psycopg.OperationalError):  # PostgreSQL down or unreachable (a pool timeout too)
                raise fail(f"PostgreSQL could not be reached ({type(exc).__name__}: {exc})", ExitCode.UNAVAILABLE) from None
            raise

    async def _direct(self, fn: Callable[[Direct], Awaitable[T]]) -> T:
        from hitl.db.postgres import PostgresDb
        from hitl.identity import Principal
        from hitl.settings import Settings

        settings = Settings.from_env(temporal_address=self.address, namespace=self.namespace)
        db = PostgresDb(approvals_table=self.approvals_table or environment().approvals_table)
        # The operator reads every approval (as the service's approvals:read); deciding is the --as claim.
        principal = Principal(name=self.as_name or environment().user or "operator",
                              scopes=frozenset({"approvals:read", "approvals:decide"}))
        signer = _signer() if self.sign else None
        if signer is not None:
            import sys

            print(f"signing the claim {principal.name!r} with the service's key ({signer.kid})", file=sys.stderr)
        direct = Direct(settings=settings, db=db, principal=principal, signer=signer)
        try:
            return await fn(direct)
        finally:
            await db.aclose()
            db.close()


@dataclass
class Direct:
    """What a ``--temporal`` command works with: Temporal (connected on first use), PostgreSQL,
    the operator as a principal, and the service's signer when ``HITL_SIGNING_KEY`` is set."""

    settings: Any
    db: PostgresDb
    principal: Principal
    signer: Signer | None
    _client: Client | None = field(default=None, repr=False)

    async def temporal(self) -> Client:
        from hitl._core import client as _client

        global _connected
        if self._client is None:
            self._client = await _client.connect(self.settings)
            _connected = True
        return self._client


_connected = False


def connected_to_temporal() -> bool:
    """Whether this process made a Temporal client (see ``hitl.cli.main`` for why that matters at exit)."""
    return _connected


def _signer() -> Signer | None:
    """The service's signing key, as ``hitl serve`` loads it: whoever holds it may sign any decision."""
    env = environment()
    if not env.signing_key:
        return None
    from hitl.security.signing import Signer

    return Signer.from_pem(env.signing_key, env.signing_key_id or None)


def parse_json(text: str, flag: str) -> Any:
    """JSON given on the command line; a usage error (exit 2) naming the flag when it does not parse."""
    import json

    try:
        return json.loads(text)
    except ValueError as exc:
        usage(f"{flag}: not JSON ({exc})")


def read_json_file(path: str, flag: str) -> Any:
    """JSON from a file, or from stdin for ``-``."""
    import sys

    if path == "-":
        return parse_json(sys.stdin.read(), flag)
    try:
        with open(path, encoding="utf-8") as f:
            return parse_json(f.read(), flag)
    except OSError as exc:
        usage(f"{flag}: {exc}")
