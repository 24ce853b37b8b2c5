"""The root ``hitl`` application, its sub-applications and what every command shares: the error
console, the exit codes and the options that recur."""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from hitl import errors


class ExitCode(IntEnum):
    """What the ``hitl`` command's exit status says happened (the same over HTTP and ``--temporal``)."""

    OK = 0
    ERROR = 1
    """Anything else: a setting missing, Temporal refusing a call for a reason of its own."""
    USAGE = 2
    """A flag or argument the command does not take (typer's own), or JSON that does not parse."""
    REFUSED = 3
    """Not authenticated, or not allowed: a scope the token lacks, the approval's policy (401/403)."""
    NOT_FOUND = 4
    """No such approval or run, or not one the caller may see (404)."""
    CONFLICT = 5
    """Already decided (by whom and when is printed), or the run has ended (409)."""
    INVALID = 6
    """A decision that does not fit the approval: its kind, the tool's schema, a size limit (422/413)."""
    UNAVAILABLE = 7
    """The decision service or Temporal could not be reached, or gave no answer in time (503)."""


EXIT_CODES_HELP = ("Exit codes: 0 ok; 1 other error; 2 usage; 3 not authenticated or refused (401/403); "
                   "4 not found (404); 5 conflict: already decided (409); 6 invalid decision (422); "
                   "7 service or Temporal unavailable (503, connection refused).")

app = typer.Typer(help="Durable human-in-the-loop for LLM agents, on Temporal.\n\n" + EXIT_CODES_HELP,
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
approvals_app = typer.Typer(help="List, read and decide approvals (through the decision service, or --temporal).\n\n"
                            + EXIT_CODES_HELP, no_args_is_help=True)
app.add_typer(approvals_app, name="approvals")
runs_app = typer.Typer(help="List, show and cancel runs (through the decision service, or --temporal).\n\n" + EXIT_CODES_HELP,
                       no_args_is_help=True)
app.add_typer(runs_app, name="runs")
tokens_app = typer.Typer(help="API tokens of the decision service (straight to its PostgreSQL).", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
keys_app = typer.Typer(help="Signing keys of decisions (strict mode).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(help="Check the audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

err = Console(stderr=True)
"""Messages for people: always stderr, so stdout carries only the answer (JSON with ``--json``)."""

Modules = Annotated[list[str], typer.Option("--agents", "-a", metavar="MODULE", help="A module defining Agents (repeat for more).")]
Address = Annotated[str | None, typer.Option(help="Temporal address (default TEMPORAL_ADDRESS or localhost:7233); "
                                             "implies --temporal.")]
Namespace = Annotated[str | None, typer.Option(help="Temporal namespace (default TEMPORAL_NAMESPACE or default); "
                                               "implies --temporal.")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON for scripts on stdout instead of a table (messages on stderr).")]
ApprovalsTable = Annotated[str | None, typer.Option(help="The approvals table (default HITL_APPROVALS_TABLE or approvals).")]

# Which HitlError is which exit code: the first matching class wins, so subclasses come first.
_CODES: list[tuple[type[errors.HitlError], ExitCode]] = [
    (errors.NotAuthenticatedError, ExitCode.REFUSED),
    (errors.PermissionDeniedError, ExitCode.REFUSED),
    (errors.RunNotFoundError, ExitCode.NOT_FOUND),
    (errors.RequirementNotFoundError, ExitCode.NOT_FOUND),
    (errors.ApprovalConflictError, ExitCode.CONFLICT),
    (errors.RequirementAlreadyResolvedError, ExitCode.CONFLICT),
    (errors.RunEndedError, ExitCode.CONFLICT),
    (errors.InvalidInputError, ExitCode.INVALID),
    (errors.UnresolvedRequirementsError, ExitCode.INVALID),
    (errors.TemporalUnavailableError, ExitCode.UNAVAILABLE),
]


def code_of(exc: errors.HitlError) -> ExitCode:
    """The exit code of a hitl error, as the service's status code of it would map."""
    return next((code for kind, code in _CODES if isinstance(exc, kind)), ExitCode.ERROR)


def fail(message: object, code: ExitCode = ExitCode.ERROR) -> typer.Exit:
    """Print ``error: message`` on stderr; the ``typer.Exit`` to raise with ``code``."""
    from rich.markup import escape

    # escaped: a message quoting "[...]" (a JSON list, a tool's argument) must print as it is
    err.print(f"[red]error:[/red] {escape(str(message))}", highlight=False, soft_wrap=True)
    return typer.Exit(int(code))


def fail_hitl(exc: errors.HitlError) -> typer.Exit:
    """:func:`fail` for a hitl error; a conflict says who decided first and when."""
    if isinstance(exc, errors.ApprovalConflictError) and exc.resolved_by:
        return fail(already_decided(exc.resolved_by, exc.resolved_at, exc.status), ExitCode.CONFLICT)
    return fail(exc, code_of(exc))


def already_decided(by: str, at: float | None, status: str | None) -> str:
    """The 409's message: "already decided by alice at 2026-12-02T10:00:05+00:00 (approved)"."""
    from datetime import UTC, datetime

    when = f" at {datetime.fromtimestamp(at, UTC).isoformat(timespec='seconds')}" if at else ""
    # who and when say it all; the detail repeats them (it stays in the service's JSON body)
    return f"already decided by {by}{when}" + (f" ({status})" if status else "")


def usage(message: str) -> NoReturn:
    """A usage error (exit 2), as typer reports its own."""
    raise typer.BadParameter(message)
