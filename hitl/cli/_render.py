"""How approvals and runs look to people: rich tables and colours on stdout. Scripts use ``--json``,
which prints the service's own JSON instead. Approvals are printed from the service's models
(``hitl._core.views``), whether the JSON came from the service or from PostgreSQL; runs from plain dicts."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.json import JSON
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # imported where an approval is printed: most commands print none
    from hitl._core.views import ApprovalDetail, ApprovalRecord

STATUS_STYLE = {"pending": "yellow", "approved": "green", "rejected": "red", "expired": "magenta", "cancelled": "dim",
                "paused": "yellow", "running": "cyan", "completed": "green", "error": "red"}


def out() -> Console:
    return Console(highlight=False)


def note(text: str) -> None:
    """A remark for people, on stderr: a table on stdout stays the whole of stdout."""
    from hitl.cli._app import err

    err.print(escape(text), highlight=False, soft_wrap=True)


def echo_json(value: Any) -> None:
    """The answer for scripts: one JSON document on stdout, nothing else there."""
    print(json.dumps(value, indent=1, default=str))


def status(text: str | None) -> str:
    text = text or ""
    return f"[{STATUS_STYLE.get(text, 'white')}]{escape(text)}[/]"


def span(seconds: float) -> str:
    """A duration as people say it: 45s, 12m, 3h, 2d."""
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else ""


def deadline(epoch: float | None, *, pending: bool = True) -> str:
    """Time left, red once past; the time itself for an approval no longer waiting."""
    if not epoch:
        return ""
    if not pending:
        return when(epoch)
    left = epoch - time.time()
    return f"[red]overdue {span(left)}[/]" if left < 0 else f"[yellow]in {span(left)}[/]" if left < 3600 else f"in {span(left)}"


def approvers(record: ApprovalRecord) -> str:
    """``alice, bob 1/2``: who may decide, and confirmations toward the quorum."""
    policy = record.context.get("policy") or {}
    names = ", ".join(policy.get("approvers") or []) or "anyone"
    quorum = int(policy.get("quorum") or 1)
    return f"{names} {len(record.context.get('approvals') or [])}/{quorum}" if quorum > 1 else names


def approvals_table(records: list[ApprovalRecord]) -> None:
    table = Table("id", "tool", "agent", "age", "deadline", "approvers/quorum", "status")
    now = time.time()
    for r in records:
        context = r.context
        table.add_row(escape(r.id), escape(str(context.get("tool_name") or r.requirement_kind)), escape(r.agent_name),
                      span(now - r.created_at), deadline(context.get("deadline"), pending=r.status == "pending"),
                      escape(approvers(r)), status(r.status))
    out().print(table)


def approval_detail(d: ApprovalDetail) -> None:
    console = out()
    context = d.context
    console.print(f"[bold]{escape(d.id)}[/bold]  {status(d.status)}  {d.requirement_kind}", highlight=False)
    policy = d.policy or {}
    rows = [
        ("tool", context.get("tool_name")), ("agent", d.agent_name),
        ("run", f"{d.run_id} ({d.run_status or d.run_status_error or '?'})"),
        ("team run", d.team_run_id),
        ("requested", when(d.created_at) + (f" by {d.user_id}" if d.user_id else "")),
        ("deadline", deadline(d.deadline, pending=d.status == "pending") or "none"),
        ("approvers", ", ".join(policy.get("approvers") or []) or "anyone"),
        ("quorum", f"{len(d.approvals)} of {policy.get('quorum')} confirmed"
         + (f" ({', '.join(d.approvals)})" if d.approvals else "") if (policy.get("quorum") or 1) > 1 else None),
        ("policy", ", ".join(f"{k}={v}" for k, v in policy.items()
                             if k not in ("approvers", "quorum") and v not in (None, [], False))),
        ("escalation level", str(d.escalation_level or 0)),
        ("uncertain outcome", "[red]yes: the tool may have run already[/]" if context.get("uncertain_outcome") else None),
        ("decided", f"{d.resolved_by} at {when(d.resolved_at)}" if d.resolved_by else None),
    ]
    for label, value in rows:
        if value:
            markup = label in ("deadline", "uncertain outcome")  # these two carry colours of their own
            console.print(f"  [bold]{label:<17}[/bold] {value if markup else escape(str(value))}")
    console.print("  [bold]arguments[/bold]")
    console.print(JSON.from_data(context.get("arguments") or {}, indent=2))
    if d.resolution:
        console.print("  [bold]resolution[/bold]")
        console.print(JSON.from_data(d.resolution, indent=2))
    events = Table("seq", "event", "at", "by", "detail", title="history")
    for e in d.events:
        payload = dict(e.payload)
        by = payload.pop("resolved_by", None) or payload.pop("by", None) or payload.pop("changed_by", None) or ""
        payload.pop("signature", None)  # a compact JWS: long, and `hitl audit verify` is the place to check it
        events.add_row(str(e.seq), escape(e.kind), when(e.at), escape(str(by)),
                       escape(json.dumps(payload, default=str)[:200]))
    console.print(events)


def run_summary_table(runs: list[dict[str, Any]]) -> None:
    table = Table("run id", "agent", "status", "pending tools", "next deadline", "started")
    for r in runs:
        table.add_row(escape(r["run_id"]), escape(r.get("agent_name") or ""), status(r["status"]),
                      escape(", ".join(r.get("pending_tools") or [])), r.get("next_deadline") or "", r.get("started_at") or "")
    out().print(table)


def run_detail(run: dict[str, Any]) -> None:
    console = out()
    console.print(f"[bold]{escape(run['run_id'])}[/bold] {escape(run.get('agent_name') or '')} {status(run['status'])}")
    if run.get("waiting_for_worker"):
        console.print(f"[yellow]waiting for a worker: {escape(run['waiting_for_worker'])}[/]")
    if run.get("error"):
        console.print(f"[red]{escape(run['error'])}[/]")
    if run.get("content"):
        console.print(escape(run["content"]))
    if run.get("requirements"):
        table = Table("requirement", "kind", "tool", "arguments", "decision")
        for r in run["requirements"]:
            decided = (escape(f"{r['resolution']} by {r['resolved_by']}") if r.get("resolution") and r.get("resolved_by")
                       else escape(r.get("resolution") or "") or "[yellow]pending[/]")
            table.add_row(escape(r["id"]), r["kind"], escape(r["tool_execution"]["tool_name"]),
                          escape(json.dumps(r["tool_execution"].get("arguments"))), decided)
        console.print(table)


def resolved(result: dict[str, Any]) -> None:
    """A decision's answer: what was decided, then the run after it."""
    console = out()
    console.print(f"{escape(result['decision'])} {escape(result['approval_id'])} as {escape(result['resolved_by'])}")
    run = result["run"]
    if result.get("waiting"):
        console.print(f"[yellow]the run had not paused again or ended yet[/]; see it with: hitl runs show {escape(run['run_id'])}")
    run_detail(run)
