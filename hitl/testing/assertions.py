"""Checks and decisions for tests of an agent's approval flow (the pytest plugin's fixtures run the stack).

::

    run = agent.run("Pay 5000 to acme")
    req = assert_paused(run, tool="pay", arguments={"amount": 5000}, approvers=["group:finance"])
    done = decide(agent, run, approve=True, resolved_by="carol")
"""

from __future__ import annotations

from typing import Any, Protocol

from hitl.run import RunOutput, RunRequirement

__all__ = ["adecide", "assert_paused", "decide"]


class _Continues(Protocol):
    """An Agent or a Team (hitl.testing sits below them: it names what it uses)."""

    def continue_run(self, *args: Any, **kwargs: Any) -> RunOutput: ...

    async def acontinue_run(self, *args: Any, **kwargs: Any) -> RunOutput: ...


def assert_paused(run: RunOutput, *, tool: str | None = None, arguments: dict[str, Any] | None = None,
                  approvers: list[str] | None = None) -> RunRequirement:
    """The run's one undecided requirement, after checking the run is paused on it.

    Args:
        run: What ``agent.run`` (or ``continue_run``) answered.
        tool: The tool the requirement must be for.
        arguments: Arguments it must have (only those named are compared).
        approvers: Its approvers, exactly (``@approval(approvers=...)``, after escalation).

    Raises:
        AssertionError: naming the run and what differs.
    """
    assert run.is_paused, f"run {run.run_id}: expected a pause, got {run.status.value}" + (
        f" ({run.error})" if run.error else "") + (f"; waiting for a worker: {run.waiting_for_worker}"
                                                     if run.waiting_for_worker else "")
    active = run.active_requirements
    assert len(active) == 1, f"run {run.run_id}: expected one undecided requirement, got {[r.id for r in active]}"
    [requirement] = active
    call = requirement.tool_execution
    if tool is not None:
        assert call.tool_name == tool, f"run {run.run_id}: paused on {call.tool_name!r}, not {tool!r}"
    if arguments is not None:
        differ = {k: (call.arguments.get(k), v) for k, v in arguments.items() if call.arguments.get(k) != v}
        assert not differ, f"run {run.run_id}, {call.tool_name}: arguments (got, expected) differ: {differ}"
    if approvers is not None:
        assert requirement.approvers == approvers, (
            f"run {run.run_id}, {call.tool_name}: approvers {requirement.approvers}, expected {approvers}")
    return requirement


def _decided(run: RunOutput, approve: bool, reason: str | None, arguments: dict[str, Any] | None,
             resolved_by: str | None) -> list[RunRequirement]:
    for requirement in run.active_requirements:
        if approve:
            requirement.confirm(arguments, resolved_by=resolved_by)
        else:
            requirement.reject(reason, resolved_by=resolved_by)
    return run.requirements


def decide(agent: _Continues, run: RunOutput, *, approve: bool = True, reason: str | None = None,
           arguments: dict[str, Any] | None = None, resolved_by: str | None = None) -> RunOutput:
    """Confirm (or, with ``approve=False``, reject) every undecided requirement of ``run`` and continue it:
    the run as it then stands (paused again, or ended)."""
    return agent.continue_run(run_id=run.run_id, requirements=_decided(run, approve, reason, arguments, resolved_by))


async def adecide(agent: _Continues, run: RunOutput, *, approve: bool = True, reason: str | None = None,
                  arguments: dict[str, Any] | None = None, resolved_by: str | None = None) -> RunOutput:
    """:func:`decide`, awaited."""
    return await agent.acontinue_run(run_id=run.run_id,
                                     requirements=_decided(run, approve, reason, arguments, resolved_by))
