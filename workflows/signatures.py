"""Strict mode in the run: decisions and approval changes must carry a signature a trusted key made.

Pure and deterministic but for one input, the keys this worker trusts (``hitl.security.signing.trust``):
a redeploy may change them, so what depends on them is recorded. A decision's verdict is kept by
``verdicts.py`` (a replay is lenient and skips this check); an approval change's by a marker of
its own here (``hitl-change-verdicts``), since changes had no recorded verdicts before.
"""

from __future__ import annotations

from temporalio import workflow

import hitl.workflows.generation as generation
from hitl._wire import digest
from hitl.decisions import ChangeApproval, Decision
from hitl.errors import DecisionNotAllowedError
from hitl.run import RunRequirement
from hitl.security import signing

CHANGE_VERDICTS_PATCH = "hitl-change-verdicts"


class Signatures:
    def __init__(self, run_id: str, team_run_id: str | None, nonces: dict[str, float] | None = None) -> None:
        self._run_id = run_id
        self._team_run_id = team_run_id
        self._changes = 0
        self._nonces: dict[str, float] = dict(nonces or {})
        """Nonces of the signed changes this run (and the runs it continues) took, with when each was
        signed: the same signed change is taken once."""

    def _why_not(self, req: RunRequirement, message: Decision | ChangeApproval, decider: str | None, now: float) -> str | None:
        keys = signing.trusted()
        if not keys:
            return None  # open: who decided is what the caller says
        if message.signature is None:
            return "unsigned; this run takes only decisions signed by a key its workers trust (strict mode)"
        try:
            claims = signing.verify(message.signature, keys)
        except ValueError as exc:
            return str(exc)
        mine = {(self._run_id, req.id)}
        if self._team_run_id is not None:  # a member takes what its team checked, under the team's ids
            mine.add((self._team_run_id, f"{self._run_id}/{req.id}"))
        if (claims.run_id, claims.requirement_id) not in mine:
            return f"signed for run {claims.run_id[:80]} requirement {claims.requirement_id[:80]!r}, not this one"
        if claims.action != getattr(message, "action", "change"):
            return f"signed for {claims.action!r}, not {getattr(message, 'action', 'change')!r}"
        if claims.sub != decider:
            return f"signed for {claims.sub!r}, but it says it was made by {decider!r}"
        if claims.content != signing.content_digest(message):
            return "its content is not what was signed"
        if claims.arguments != digest(req.tool_execution.arguments):
            return "signed for other arguments than this requirement's"
        if now - claims.iat > signing.MAX_AGE_SECONDS or claims.iat - now > signing.MAX_SKEW_SECONDS:
            return f"signed at {claims.iat:.0f}, outside the {signing.MAX_AGE_SECONDS:.0f} s a signature is good for"
        return None

    def check_decision(self, where: str, req: RunRequirement, decision: Decision, now: float) -> list[str]:
        """The decider's signed groups; refused (strict mode) when the signature is missing or wrong.

        Raises:
            DecisionNotAllowedError: with why, so the run records the attempt as ``refused``.
        """
        why = self._why_not(req, decision, decision.resolved_by, now)
        if why is not None:
            raise DecisionNotAllowedError(f"{where}: decision refused: {why}")
        claims = signing.claims_of(decision.signature) if decision.signature and signing.trusted() else None
        return claims.groups if claims is not None else []

    def check_change(self, where: str, req: RunRequirement, change: ChangeApproval, now: float) -> None:
        """For the update's validator: refuse a change strict mode does not take (nothing recorded)."""
        why = self._why_not(req, change, change.changed_by, now)
        if why is None and change.signature and (claims := signing.claims_of(change.signature)) is not None \
                and claims.nonce in self._nonces:
            why = "this signed change was taken already"
        if why is not None:
            raise DecisionNotAllowedError(f"{where}: change refused: {why}")

    def take_change(self, where: str, req: RunRequirement, change: ChangeApproval, now: float) -> None:
        """For the handler: as :meth:`check_change`, with the verdict recorded so that a replay follows it."""
        if not generation.patched(CHANGE_VERDICTS_PATCH):
            return  # recorded before changes were checked
        self._changes += 1
        refused = f"hitl-change-{self._changes}-refused"
        if workflow.unsafe.is_replaying():
            if workflow.patched(refused):
                raise DecisionNotAllowedError(f"{where}: change refused (as when first received)")
        else:
            try:
                self.check_change(where, req, change, now)
            except DecisionNotAllowedError:
                workflow.patched(refused)
                raise
        if change.signature and (claims := signing.claims_of(change.signature)) is not None:
            self._nonces[claims.nonce] = claims.iat

    def carried(self, now: float) -> dict[str, float]:
        """The nonces a continued run must still refuse: those whose signature is not yet too old to be taken."""
        return {n: at for n, at in self._nonces.items() if now - at <= signing.MAX_AGE_SECONDS + signing.MAX_SKEW_SECONDS}
