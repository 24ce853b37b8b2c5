"""``hitl runs list|show|cancel|upgrade``: the decision service's ``/runs`` routes, or with ``--temporal``
(implied by ``--address``/``--namespace``, as these commands took before the service existed)
``hitl._core.runs`` straight against Temporal."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from hitl.cli import _render
from hitl.cli._app import Address, AsJson, Namespace, runs_app
from hitl.cli._common import As, Direct, Target, Temporal, Token, Url
from hitl.cli._http import run_path

RunId = Annotated[str, typer.Argument(metavar="RUN_ID", help="The run's id (its Temporal workflow id).")]


@runs_app.command("list")
def runs_list(
    status: Annotated[str | None, typer.Option(help="running, paused, completed, cancelled or error.")] = None,
    tool: Annotated[str | None, typer.Option(help="Only runs waiting on this tool.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent's (or team's) runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    url: Url = None, token: Token = None, temporal: Temporal = False,
    address: Address = None, namespace: Namespace = None, as_json: AsJson = False,
) -> None:
    """Runs by their search attributes, newest first. --json prints a list of run summaries."""
    target = Target(url, token, temporal, address, namespace)
    filters = {"status": status, "tool": tool, "agent": agent, "limit": limit}
    found = target.read("/runs", lambda d: _list(d, filters), filters)["data"]
    if as_json:
        _render.echo_json(found)
    else:
        _render.run_summary_table(found)


async def _list(d: Direct, filters: dict[str, Any]) -> dict[str, Any]:
    from hitl._core import listing

    # The shape of the service's page, so both paths are read alike.
    return {"data": [r.model_dump(mode="json") for r in await listing.list_runs(await d.temporal(), **filters)]}


@runs_app.command("show")
def runs_show(
    run_id: RunId,
    url: Url = None, token: Token = None, temporal: Temporal = False,
    address: Address = None, namespace: Namespace = None, as_json: AsJson = False,
) -> None:
    """One run: its status, answer and requirements."""
    target = Target(url, token, temporal, address, namespace)
    run = target.read(run_path(run_id), lambda d: _get(d, run_id))
    if as_json:
        _render.echo_json(run)
    else:
        _render.run_detail(run)


async def _get(d: Direct, run_id: str) -> dict[str, Any]:
    from hitl._core import runs as _runs

    return (await _runs.get(await d.temporal(), run_id)).model_dump(mode="json")


@runs_app.command("cancel")
def runs_cancel(
    run_id: RunId,
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail.")] = None,
    wait: Annotated[float, typer.Option(min=0, max=3600, help="Seconds to wait for the run to close.")] = 60.0,
    url: Url = None, token: Token = None, temporal: Temporal = False,
    address: Address = None, namespace: Namespace = None, as_name: As = None, as_json: AsJson = False,
) -> None:
    """Cancel a run: its pending approvals become cancelled. Prints `RUN_ID STATUS` (--json: the run)."""
    target = Target(url, token, temporal, address, namespace, as_name=as_name)
    if not target.temporal:
        with target.service(timeout=wait + 30) as service:
            run = service.post(run_path(run_id, "cancel"), {"reason": reason} if reason else None, {"wait": wait})
    else:
        # The service records "cancelled by <principal>"; straight to Temporal only a claimed name can be.
        claimed = f"cancelled by {as_name}" + (f": {reason}" if reason else "") if as_name else reason
        run = target.direct(lambda d: _cancel(d, run_id, claimed, wait))
    if as_json:
        _render.echo_json(run)
    else:
        print(f"{run['run_id']} {run['status']}")


async def _cancel(d: Direct, run_id: str, reason: str | None, wait: float) -> dict[str, Any]:
    from hitl._core import runs as _runs

    return (await _runs.cancel(await d.temporal(), run_id, reason=reason, wait=wait)).model_dump(mode="json")


@runs_app.command("upgrade")
def runs_upgrade(
    run_ids: Annotated[list[str] | None, typer.Argument(metavar="[RUN_ID]...", help="The runs to move.")] = None,
    all_paused: Annotated[bool, typer.Option("--all-paused", help="Every paused run (of --agent).")] = False,
    agent: Annotated[str | None, typer.Option(help="With --all-paused: only this agent's (or team's) runs.")] = None,
    temporal: Temporal = False, address: Address = None, namespace: Namespace = None, as_json: AsJson = False,
) -> None:
    """Move paused runs to the worker deployment's current version (worker versioning): each continues
    as new at its pause, with Temporal's auto-upgrade. An operator's act: straight to Temporal
    (--temporal). Run it after `temporal worker deployment set-current-version`, while the old
    version's workers still run (they make the move)."""
    from hitl.cli._app import usage

    target = Target(None, None, temporal, address, namespace)
    if not target.temporal:
        usage("upgrade goes straight to Temporal: add --temporal (an operator's act, with your Temporal access)")
    if bool(run_ids) == all_paused:
        usage("name the runs, or give --all-paused (not both)")
    asked = target.direct(lambda d: _upgrade(d, list(run_ids or []), agent))
    if as_json:
        _render.echo_json(asked)
    else:
        print("\n".join(f"{run_id} asked to move to the current version" for run_id in asked) or "no paused runs")


async def _upgrade(d: Direct, run_ids: list[str], agent: str | None) -> list[str]:
    from hitl.worker import versioning

    client = await d.temporal()
    if not run_ids:
        return await versioning.upgrade_paused(client, agent=agent)
    for run_id in run_ids:
        await versioning.upgrade(client, run_id)
    return run_ids
