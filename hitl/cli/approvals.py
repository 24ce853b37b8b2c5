"""``hitl approvals list|show|approve|reject|input|result``: the decision service's ``/approvals``
routes from a terminal, or with ``--temporal`` the client core they run on (``hitl._core.approvals``).

Every decision is made as the token's principal (through the service) or as ``--as NAME``
(straight to Temporal: a claim, see ``hitl.cli._common``); each prints the run after it.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import typer

from hitl.cli import _render
from hitl.cli._app import Address, AsJson, Namespace, approvals_app, usage
from hitl.cli._common import As, Direct, Sign, Table, Target, Temporal, Token, Url, parse_json, read_json_file
from hitl.cli._http import approval_path

ApprovalId = Annotated[str, typer.Argument(metavar="ID", help="The approval's id: <run_id>/<requirement_id>.")]
Wait = Annotated[float, typer.Option(min=0, max=3600, help="Seconds to wait for the run's next pause or end before "
                                     "answering with the run as it stands.")]


class Status(str, enum.Enum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"
    cancelled = "cancelled"
    all = "all"


class SortBy(str, enum.Enum):
    created_at = "created_at"
    deadline = "deadline"
    age = "age"


@approvals_app.command("list")
def list_(
    status: Annotated[Status, typer.Option(help="Only approvals in this state (all: any).")] = Status.pending,
    mine: Annotated[bool, typer.Option("--mine", help="Only those I may decide (approver=me).")] = False,
    tool: Annotated[str | None, typer.Option(help="Only this tool's.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent's.")] = None,
    run: Annotated[str | None, typer.Option(help="Only this run's.")] = None,
    sort: Annotated[SortBy, typer.Option(help="created_at: newest first; deadline: soonest first; age: oldest first.")]
    = SortBy.created_at,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    cursor: Annotated[str | None, typer.Option(help="The next page: meta.next_cursor of the page before.")] = None,
    url: Url = None, token: Token = None, temporal: Temporal = False, address: Address = None, namespace: Namespace = None,
    approvals_table: Table = None, as_name: As = None, as_json: AsJson = False,
) -> None:
    """Approvals you may see: id, tool, agent, age, deadline, approvers/quorum, status.

    --json prints the service's page: {"data": [...], "meta": {..., "next_cursor"}}.
    """
    target = Target(url, token, temporal, address, namespace, approvals_table, as_name)
    params: dict[str, Any] = {"status": None if status is Status.all else status.value, "approver": "me" if mine else None,
                              "tool_name": tool, "agent_name": agent, "run_id": run, "sort_by": sort.value, "limit": limit,
                              "cursor": cursor}
    page = target.read("/approvals", lambda d: _listing(d, params), params)
    if as_json:
        _render.echo_json(page)
        return
    from hitl._core.views import ApprovalRecord

    _render.approvals_table([ApprovalRecord.model_validate(r) for r in page["data"]])
    meta = page["meta"]
    more = f"; next page: --cursor {meta['next_cursor']}" if meta.get("next_cursor") else ""
    _render.note(f"{len(page['data'])} of {meta['total_count']}{more}")


async def _listing(d: Direct, params: dict[str, Any]) -> dict[str, Any]:
    from hitl._core import approvals as _approvals

    query = _approvals.ApprovalQuery(**{k: v for k, v in params.items() if v is not None})
    records, total, cursor = await _approvals.listing(d.db, d.principal, query)
    return {"data": [r.model_dump(mode="json") for r in records], "meta": _approvals.page_meta(query, total, cursor)}


@approvals_app.command("show")
def show(
    approval_id: ApprovalId,
    url: Url = None, token: Token = None, temporal: Temporal = False, address: Address = None, namespace: Namespace = None,
    approvals_table: Table = None, as_json: AsJson = False,
) -> None:
    """One approval: arguments, policy, deadline, escalation level, confirmations, its run's status, its history."""
    target = Target(url, token, temporal, address, namespace, approvals_table)
    detail = target.read(approval_path(approval_id), lambda d: _detail(d, approval_id))
    if as_json:
        _render.echo_json(detail)
    else:
        from hitl._core.views import ApprovalDetail

        _render.approval_detail(ApprovalDetail.model_validate(detail))


async def _detail(d: Direct, approval_id: str) -> dict[str, Any]:
    # What GET /approvals/{id} answers; the tool's argument schema only where this process defines the agent.
    from hitl._core import approvals as _approvals

    found = await _approvals.detail(d.temporal, d.db, d.principal, approval_id)
    return found.model_dump(mode="json")


def _resolve(target: Target, approval_id: str, body: dict[str, Any], wait: float, as_json: bool) -> None:
    """Send the decision, print the answer: the decision and the run after it."""
    # None is "not given" to the service too; a result of false or 0 is a result, so only None goes
    body = {k: v for k, v in body.items() if v is not None and (k != "remember" or v)}
    if not target.temporal:
        with target.service(timeout=wait + 30) as service:
            result = service.post(approval_path(approval_id, "resolve"), body, {"wait": wait})
    else:
        result = target.direct(lambda d: _resolve_direct(d, approval_id, body, wait), decider=True)
    if as_json:
        _render.echo_json(result)
    else:
        _render.resolved(result)


async def _resolve_direct(d: Direct, approval_id: str, body: dict[str, Any], wait: float) -> dict[str, Any]:
    from pydantic import ValidationError

    from hitl._core import approvals as _approvals
    from hitl.errors import InvalidDecisionError

    try:
        request = _approvals.ResolveRequest(**body)
    except ValidationError as exc:  # what the service answers with 422
        raise InvalidDecisionError(f"approval {approval_id!r}: {exc}") from None
    result = await _approvals.resolve(await d.temporal(), d.db, d.principal, approval_id, request, wait=wait, signer=d.signer)
    return result.model_dump(mode="json")


@approvals_app.command("approve")
def approve(
    approval_id: ApprovalId,
    args: Annotated[str | None, typer.Option("--args", metavar="JSON", help="Corrected arguments to run the tool with.")] = None,
    args_file: Annotated[str | None, typer.Option(metavar="FILE", help="The same, from a file (- for stdin).")] = None,
    remember: Annotated[bool, typer.Option("--remember", help="Approve this tool for the rest of the run.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail.")] = None,
    wait: Wait = 60.0,
    url: Url = None, token: Token = None, temporal: Temporal = False, address: Address = None, namespace: Namespace = None,
    approvals_table: Table = None, as_name: As = None, sign: Sign = False, as_json: AsJson = False,
) -> None:
    """Approve a confirmation, optionally with corrected arguments (checked against the tool's schema)."""
    target = Target(url, token, temporal, address, namespace, approvals_table, as_name, sign)
    if args is not None and args_file is not None:
        usage("give --args or --args-file, not both")
    arguments = parse_json(args, "--args") if args is not None else read_json_file(args_file, "--args-file") \
        if args_file is not None else None
    _resolve(target, approval_id, {"status": "approved", "arguments": arguments, "remember": remember, "reason": reason},
             wait, as_json)


@approvals_app.command("reject")
def reject(
    approval_id: ApprovalId,
    reason: Annotated[str, typer.Option(help="Why: told to the model, kept on the audit trail.")],
    wait: Wait = 60.0,
    url: Url = None, token: Token = None, temporal: Temporal = False, address: Address = None, namespace: Namespace = None,
    approvals_table: Table = None, as_name: As = None, sign: Sign = False, as_json: AsJson = False,
) -> None:
    """Reject an approval of any kind, with a reason."""
    target = Target(url, token, temporal, address, namespace, approvals_table, as_name, sign)
    _resolve(target, approval_id, {"status": "rejected", "reason": reason}, wait, as_json)


@approvals_app.command("input")
def input_(
    approval_id: ApprovalId,
    fields: Annotated[list[str] | None, typer.Argument(
        metavar="FIELD=VALUE...", help="The fields a person fills: name=text, or name:=JSON for a number, a list...")] = None,
    json_input: Annotated[str | None, typer.Option("--json-input", metavar="JSON", help="All the fields as one JSON object.")]
    = None,
    wait: Wait = 60.0,
    url: Url = None, token: Token = None, temporal: Temporal = False, address: Address = None, namespace: Namespace = None,
    approvals_table: Table = None, as_name: As = None, sign: Sign = False, as_json: AsJson = False,
) -> None:
    """Answer a user-input approval with the fields its tool asks for."""
    target = Target(url, token, temporal, address, namespace, approvals_table, as_name, sign)
    if bool(fields) == (json_input is not None):
        usage("give the fields as FIELD=VALUE arguments or as --json-input, one of the two")
    value = parse_json(json_input, "--json-input") if json_input is not None else _fields(fields or [])
    _resolve(target, approval_id, {"status": "approved", "user_input": value}, wait, as_json)


def _fields(items: list[str]) -> dict[str, Any]:
    """``name=text`` and ``name:=JSON`` (httpie's convention): text stays text, so ``code=007`` keeps its zeros."""
    values: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.rstrip(":"):
            usage(f"{item!r}: FIELD=VALUE (or FIELD:=JSON)")
        if name.endswith(":"):
            values[name[:-1]] = parse_json(text, name[:-1])
        else:
            values[name] = text
    return values


@approvals_app.command("result")
def result(
    approval_id: ApprovalId,
    value: Annotated[str | None, typer.Option("--value", metavar="JSON", help="The result of the tool run elsewhere.")] = None,
    file: Annotated[str | None, typer.Option("--file", metavar="FILE", help="The same, from a file (- for stdin).")] = None,
    wait: Wait = 60.0,
    url: Url = None, token: Token = None, temporal: Temporal = False, address: Address = None, namespace: Namespace = None,
    approvals_table: Table = None, as_name: As = None, sign: Sign = False, as_json: AsJson = False,
) -> None:
    """Give an external-execution approval the result of its tool, executed elsewhere."""
    target = Target(url, token, temporal, address, namespace, approvals_table, as_name, sign)
    if (value is None) == (file is None):
        usage("give the result with --value JSON or --file FILE, one of the two")
    external = parse_json(value, "--value") if value is not None else read_json_file(file or "-", "--file")
    _resolve(target, approval_id, {"status": "approved", "external_result": external}, wait, as_json)
