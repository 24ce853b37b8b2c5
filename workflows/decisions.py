"""Checking a decision against the requirement it names: pure, deterministic, no I/O.

Used by the ``continue_run`` update's validator (so a bad decision never enters history) and
again by the handlers, where the state may have moved on (a concurrent caller decided first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from hitl._core import registry
from hitl.decisions import Confirm, Decision, ProvideInput, ProvideResult, Reject
from hitl.errors import (
    ConfigurationError,
    DecisionNotAllowedError,
    InvalidDecisionError,
    RequirementAlreadyResolvedError,
    RequirementNotFoundError,
)
from hitl.identity import reserved_prefix
from hitl.policy import may_decide
from hitl.run import RunRequirement, render_result
from hitl.tools.mcp import McpTool

if TYPE_CHECKING:
    from hitl._wire import McpToolSpec


class Patch(BaseModel):
    """What a valid decision changes on its requirement."""

    requirement_id: str
    resolution: str
    arguments: dict[str, Any] | None = None
    result: str | None = None
    reason: str | None = None
    resolved_by: str | None = None
    remember: bool = False


def summary(req: RunRequirement) -> str:
    """How a resolved requirement was decided, for the message a late caller gets: ``confirmed by alice``."""
    return f"{req.resolution}" + (f" by {req.resolved_by}" if req.resolved_by else "")


def find(requirements: list[RunRequirement], resolved: dict[str, str], run_id: str, rid: str) -> RunRequirement:
    """The pending requirement ``rid`` names; refused when it was decided already (saying how) or is unknown."""
    for r in requirements:
        if r.id == rid:
            if r.resolution is not None:
                raise RequirementAlreadyResolvedError(
                    f"run {run_id}: requirement {rid!r} ({r.tool_execution.tool_name}) was already resolved: {summary(r)}"
                )
            return r
    if rid in resolved:
        how = f": {resolved[rid]}" if resolved[rid] else ""
        raise RequirementAlreadyResolvedError(f"run {run_id}: requirement {rid!r} was resolved in an earlier pause{how}")
    raise RequirementNotFoundError(f"run {run_id} has no requirement {rid!r}")


def check(
    agent_name: str, run_id: str, req: RunRequirement, decision: Decision, requester: str | None = None,
    *, lenient: bool = False, groups: list[str] | None = None, reserved_names: bool = True,
    mcp_tools: Sequence[McpToolSpec] | None = None,
) -> Patch:
    """The patch a decision makes, or an error that says why it is refused.

    ``lenient``: the decision was accepted when first received (a replay says so): what depends
    on the worker's definitions (the approvers' groups, the tool's schema) is not asked again,
    since a redeploy may have changed them; what depends on the run's state still is.
    ``groups``: the decider's groups as its signature proves them (strict mode).
    ``reserved_names``: refuse a decider named like a group or like hitl itself (``group:``, ``system:``).
    ``mcp_tools``: the MCP tools the run recorded, whose schemas check edited arguments.
    Off for runs older than the generation: those without recorded verdicts check every replayed
    decision again, and one such decision must reach the verdict it reached then.
    """
    where = f"run {run_id}, requirement {req.id!r} ({req.tool_execution.tool_name})"
    by = decision.resolved_by
    # Not lenient only: a replayed decision keeps the verdict it had (verdicts.py), so this needs no patch.
    if by is not None and not lenient and reserved_names and (prefix := reserved_prefix(by)) is not None:
        raise DecisionNotAllowedError(
            f"{where}: {by[:80]!r} is a reserved name: {prefix!r} names a group's members or what hitl decides itself "
            "(the deadline's system:timeout), never a decider")
    if req.policy is not None and not lenient:
        why_not = may_decide(req.policy, by, requester, groups or (), names_as_written=not reserved_names)
        if why_not is not None:
            raise DecisionNotAllowedError(f"{where}: {why_not}")
    if isinstance(decision, Reject):
        return Patch(requirement_id=req.id, resolution="rejected", reason=decision.reason, resolved_by=by)
    if isinstance(decision, Confirm):
        if req.kind != "confirmation":
            raise InvalidDecisionError(f"{where} needs {req.kind}, not a confirmation")
        quorum = req.policy.quorum if req.policy is not None else 1
        if quorum > 1:
            if by is None:
                raise InvalidDecisionError(f"{where} needs {quorum} distinct approvers: say who confirms (resolved_by)")
            if by in req.approvals:
                raise InvalidDecisionError(f"{where}: {by} has already approved; {quorum} distinct approvers are needed")
            if decision.arguments is not None or decision.remember:
                raise InvalidDecisionError(
                    f"{where}: with {quorum} approvers, a confirmation can neither edit arguments nor be remembered"
                )
            if len(req.approvals) + 1 < quorum:
                return Patch(requirement_id=req.id, resolution="approval_added", resolved_by=by)
        arguments = None
        if decision.arguments is not None:
            arguments = _validated(agent_name, req, decision.arguments, where, lenient, mcp_tools)
        if decision.remember and req.uncertain_outcome:
            raise InvalidDecisionError(f"{where}: an uncertain outcome is decided once, not remembered")
        return Patch(
            requirement_id=req.id, resolution="confirmed", arguments=arguments, resolved_by=by, remember=decision.remember
        )
    if isinstance(decision, ProvideInput):
        if req.kind != "user_input":
            raise InvalidDecisionError(f"{where} needs {req.kind}, not user input")
        merged = _merge_input(where, req, decision.value)
        arguments = _validated(agent_name, req, merged, where, lenient, mcp_tools)
        return Patch(requirement_id=req.id, resolution="input_provided", arguments=arguments, resolved_by=by)
    if isinstance(decision, ProvideResult):
        if req.kind != "external_execution":
            raise InvalidDecisionError(f"{where} needs {req.kind}, not an external result")
        return Patch(
            requirement_id=req.id, resolution="result_provided", result=render_result(decision.result), resolved_by=by
        )
    raise InvalidDecisionError(f"{where}: unknown decision {decision!r}")


def _validated(agent_name: str, req: RunRequirement, arguments: dict[str, Any], where: str, lenient: bool,
               mcp_tools: Sequence[McpToolSpec] | None = None) -> dict[str, Any]:
    try:
        tool = _tool(agent_name, req, mcp_tools)
        # A member's MCP tool: its schema is in the member's run, which checks the arguments itself.
        return arguments if tool is None else tool.validate_arguments(arguments, context=where)
    except (InvalidDecisionError, ConfigurationError):
        if lenient:  # accepted when first received, under the definition of that day
            return arguments
        raise


def _tool(agent_name: str, req: RunRequirement, mcp_tools: Sequence[McpToolSpec] | None = None) -> Any:
    name = req.tool_execution.tool_name
    tool = registry.get(agent_name).tools.get(name)
    if tool is not None:
        return tool
    spec = next((s for s in mcp_tools or () if s.name == name), None)
    if spec is not None:
        return McpTool(spec, None)
    if req.member_agent_name is not None and registry.get(agent_name).mcp_toolsets:
        return None
    raise InvalidDecisionError(f"agent {agent_name!r} no longer has tool {name!r}")


def _merge_input(where: str, req: RunRequirement, value: Any) -> dict[str, Any]:
    schema = req.user_input_schema or []
    asked = [f.name for f in schema if f.value is None]
    merged = {f.name: f.value for f in schema if f.value is not None}
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(asked))
        if unknown:
            raise InvalidDecisionError(f"{where}: input for fields {unknown}, but only {asked} are asked")
        missing = sorted(set(asked) - set(value))
        if missing:
            raise InvalidDecisionError(f"{where}: input is missing fields {missing}")
        merged.update(value)
        return merged
    if len(asked) != 1:
        raise InvalidDecisionError(f"{where}: {len(asked)} fields are asked ({asked}); give a dict of field values")
    merged[asked[0]] = value
    return merged


def apply(req: RunRequirement, patch: Patch, now: int) -> None:
    """Write a checked decision onto its requirement."""
    if patch.resolution == "approval_added":  # one more approver of a quorum; still pending
        req.approvals.append(patch.resolved_by or "")
        return
    if patch.resolution == "confirmed" and patch.resolved_by is not None and req.policy is not None \
            and req.policy.quorum > 1:
        req.approvals.append(patch.resolved_by)
    req.resolution = patch.resolution  # type: ignore[assignment]  # a str on the wire, one of resolution's values here
    req.resolved_by = patch.resolved_by
    req.resolved_at = now
    req.confirmed = patch.resolution not in ("rejected", "expired")
    if patch.resolution in ("rejected", "expired"):
        req.rejection_reason = patch.reason
    if patch.arguments is not None:
        if req.kind == "confirmation" and patch.arguments != req.tool_execution.arguments:
            req.tool_execution.original_arguments = req.tool_execution.arguments
        req.tool_execution.arguments = patch.arguments
        for f in req.user_input_schema or []:
            f.value = patch.arguments.get(f.name, f.value)
    if patch.result is not None:
        req.tool_execution.result = patch.result
