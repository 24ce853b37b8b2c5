"""PostgreSQL, where every approval a run pauses on is mirrored for audit queries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
import psycopg_pool

from hitl._core import deciding, sync
from hitl._core.sync import run_sync
from hitl._wire import ApprovalEvent
from hitl.errors import (
    ConfigurationError,
    InvalidInputError,
)
from hitl.security import signed_trail, signing
from hitl.store import agno
from hitl.store import approvals as _approvals
from hitl.store import audit as _audit
from hitl.store import counts as _counts
from hitl.store import verify as _verify
from hitl.store.counts import TotalCount
from hitl.store.database import IDENTIFIER, Database, close_async_pools

__all__ = ["PostgresDb", "TotalCount"]

_log = logging.getLogger(__name__)
_IDENTIFIER = IDENTIFIER


sync.before_stop(close_async_pools)


class PostgresDb(Database):
    """A PostgreSQL database for the audit trail.

    The schema is created and migrated on first use (versioned, safe from several workers at
    once). Reads use a small connection pool; workers write through an async pool.

    Args:
        db_url: A libpq connection string or URL; defaults to ``DATABASE_URL``.
        approvals_table: Table of approval records; ``<approvals_table>_events`` holds their history
            and ``<approvals_table>_quarantine`` any event PostgreSQL refused as it was.
        session_table: Accepted so that Agno code ports unchanged, and not used: hitl keeps runs
            and their sessions in Temporal (``Agent.get_run``, ``Agent.list_runs``), so nothing is
            written to it (said once in the log).
        audit_keys: The audit keys, ``kid:BASE64,...`` (the first keys new events' hashes and rows'
            seals; all verify); default ``HITL_AUDIT_KEYS`` or ``HITL_AUDIT_KEYS_FILE``, read on first
            use. None set: plain sha256, which anyone who can write the tables can recompute.

    Raises:
        ConfigurationError: a table name that is not a plain SQL identifier; on first use, no
            URL given and ``DATABASE_URL`` unset.
    """

    def __init__(
        self,
        db_url: str | None = None,
        *,
        approvals_table: str = "approvals",
        session_table: str | None = None,
        audit_keys: str | _audit.AuditKeys | None = None,
    ) -> None:
        if session_table is not None and not _IDENTIFIER.match(session_table):
            raise ConfigurationError(f"PostgresDb session_table={session_table!r} is not a plain SQL identifier (41 chars at most)")
        super().__init__(db_url, approvals_table=approvals_table, audit_keys=audit_keys, owner="PostgresDb")
        if session_table is not None:
            _log.info("PostgresDb(session_table=%r) is not used: hitl keeps runs and sessions in Temporal", session_table)
        self.session_table = session_table
        # Approvals this process decided through a run's continue_run, and how (approval id -> status): an
        # update_approval that follows, as Agno's examples do, answers with the record once (remember_run_decisions).
        self._run_decisions: OrderedDict[str, str] = OrderedDict()
        self._writes = 0  # mirror writes of this process: every COMPACT_EVERY-th compacts the counts

    def __repr__(self) -> str:
        # The URL may carry a password: never print it.
        return f"PostgresDb(approvals_table={self.approvals_table!r}, session_table={self.session_table!r})"

    async def write_events(self, events: list[ApprovalEvent]) -> list[str]:
        """Mirror events (used by the worker's audit activity); idempotent. Returns those quarantined."""
        async with (await self.apool()).connection() as conn:
            quarantined = await _audit.write_events(conn, self.approvals_table, events, self.audit_keys,
                                                    sealed=self._sealed,
                                                    team_of=agno.writer(self) if self._records else None)
            self._writes += 1
            if self._writes % _counts.COMPACT_EVERY == 0:
                try:  # the counts stay exact without it: never fail (and retry) a mirror write for it
                    await _counts.acompact(conn, self.approvals_table)
                except psycopg.Error as exc:
                    _log.warning("compacting the counts of %s failed (retried later): %s", self.approvals_table, exc)
            return quarantined

    def compact_counts(self) -> bool:
        """Fold the count deltas the triggers wrote into one row per key (the mirror does it every
        few hundred writes; counts are exact either way). False if another session was at it."""
        with self.pool().connection() as conn:
            return _counts.compact(conn, self.approvals_table)

    # ------------------------------------------------------------------ the reference's query API
    # Records are Agno's public dicts here (StoredApproval.agno): Agno code reads and compares them as dicts.
    def get_approvals(
        self,
        status: str | None = None,
        filters: dict[str, Any] | None = None,
        limit: int = 100,
        page: int = 1,
        sort_by: str = "created_at",
        sort_order: str = "desc",
        *,
        exact_count: bool = False,
        include_deleted: bool = False,
        include_undecided_audit: bool = False,
        **agno_filters: Any,
    ) -> tuple[list[dict[str, Any]], TotalCount]:
        """Approval records matching ``status`` and ``filters``, one page of them, and how many match.

        Filters: ``run_id``, ``team_run_id`` (a team run's member approvals), ``tool_name``, ``agent_name``,
        ``resolved_by``, ``created_at_gte``, ``created_at_lte`` (epoch seconds or ISO dates), ``month``
        (``"2026-11"``); Agno's keywords work too, as keywords or in ``filters``: ``run_id=``, ``user_id=``,
        ``approval_type=``, ``pause_type=`` (the requirement's kind), ``agent_id=`` (the agent's name),
        ``source_type=`` (``"agent"``, or ``"team"``: a team's own approvals and its members'), ``team_id=``
        (the team's name), and ``workflow_id=`` and ``schedule_id=``, which match nothing (hitl has neither).

        Each record carries hitl's columns and Agno's keys (``hitl.store.agno``). Approvals hidden by
        :meth:`delete_approval` are left out, and out of the total, unless ``include_deleted``. An
        audit approval (``@approval(type="audit")``) is a record of a decision, as in Agno, where it
        is written once decided: while its run waits it is left out unless ``include_undecided_audit``
        (its events are on the trail all along; the service's inbox lists it, to be decided).

        The total is a :class:`TotalCount`, an ``int`` as before: exact, except where counting
        exactly would read more than ``EXACT_UP_TO`` rows (filters beyond status, tool, agent,
        types and time, with that many matches); then it is PostgreSQL's estimate and
        ``total.estimated`` is True. ``exact_count=True`` always counts exactly, at that cost.
        """
        if not isinstance(limit, int) or not isinstance(page, int) or not 1 <= limit <= 10_000 or not 1 <= page <= 10**9:
            raise InvalidInputError(f"get_approvals: limit ({limit!r}) is 1 to 10,000 and page ({page!r}) starts at 1")
        if status is not None and not isinstance(status, str):
            raise InvalidInputError(f"get_approvals: status={status!r} is not a string")
        if filters is not None and not isinstance(filters, dict):
            raise InvalidInputError(f"get_approvals: filters={filters!r} is not a dict")
        merged = {**(filters or {}), **agno_filters}
        total = self.count(_counts.plan(self.approvals_table, status, merged, exact=exact_count,
                                         include_deleted=include_deleted, undecided_audit=include_undecided_audit))
        records = _approvals.records(self, status, merged, sort_by=sort_by, sort_order=sort_order, limit=limit,
                                     offset=(page - 1) * limit, include_deleted=include_deleted,
                                     undecided_audit=include_undecided_audit)
        return [r.agno() for r in records], total

    def count_approvals(
        self, status: str | None = None, filters: dict[str, Any] | None = None, *, exact: bool = False,
        include_deleted: bool = False, include_undecided_audit: bool = False, **agno_filters: Any,
    ) -> TotalCount:
        """How many approvals match (``get_approvals``' filters), without a page: exact or flagged ``estimated``."""
        if status is not None and not isinstance(status, str):
            raise InvalidInputError(f"count_approvals: status={status!r} is not a string")
        return self.count(_counts.plan(self.approvals_table, status, {**(filters or {}), **agno_filters}, exact=exact,
                                        include_deleted=include_deleted, undecided_audit=include_undecided_audit))

    def get_approval(self, approval_id: str, *, include_deleted: bool = False) -> dict[str, Any] | None:
        """One approval record by id, or None (also for one hidden by :meth:`delete_approval`, unless ``include_deleted``)."""
        if not isinstance(approval_id, str):
            raise InvalidInputError(f"get_approval: approval_id={approval_id!r} is not a string")
        found = _approvals.record(self, approval_id, include_deleted=include_deleted)
        return found.agno() if found is not None else None

    def get_pending_approval_count(self, user_id: str | None = None, *, include_undecided_audit: bool = False) -> int:
        """How many approvals wait for a decision (of runs started for ``user_id``, when given); exact.
        Audit approvals still waiting are not counted unless asked (see :meth:`get_approvals`)."""
        return int(self.count_approvals("pending", exact=True, user_id=user_id,
                                        include_undecided_audit=include_undecided_audit))

    def delete_approval(self, approval_id: str) -> bool:
        """Hide a decided approval, as Agno's ``delete_approval`` removes its row; the trail keeps it.

        Nothing is deleted: the events are append-only and ``hitl audit verify`` checks every row
        against them. The row gets a tombstone (``deleted_at``), outside its seal, and from then on
        ``get_approvals``, ``get_approval``, ``count_approvals``, ``get_pending_approval_count``, the
        maintained counts and the service's listings leave it out; ``include_deleted=True`` shows it,
        ``verify_trail`` still checks it and ``compliance_report`` still counts it.

        A pending approval is refused: its run waits on it, and hiding it would hide that wait from
        its approvers. Decide it (or cancel its run) first. The refusal is logged (a warning) and
        answered False, as Agno answers a deletion that did not happen.

        Returns:
            True when the approval was hidden now; False when it is unknown, already hidden, or pending.
        """
        if not isinstance(approval_id, str):
            raise InvalidInputError(f"delete_approval: approval_id={approval_id!r} is not a string")
        found = _approvals.hide(self, approval_id)
        if found and found.hidden:
            with self._lock:
                self._run_decisions.pop(approval_id, None)
            return True
        if found and found.status == "pending":
            _log.warning("delete_approval(%r) refused: the approval is pending and its run waits on it; "
                         "decide it (or cancel its run) first", approval_id)
        return False

    # ------------------------------------------------------------------ read-your-writes
    RUN_DECISIONS_KEPT = 10_000
    """How many approvals decided through a run :meth:`remember_run_decisions` keeps (the oldest go first)."""

    def remember_run_decisions(self, decided: dict[str, str]) -> None:
        """Note approvals this process just decided through their run (``continue_run``): approval id ->
        ``'approved'`` or ``'rejected'``. Agno's examples confirm locally, continue the run, then call
        ``update_approval(id, expected_status='pending', status=...)`` on the record the run has already
        decided: that call answers with the record once (see :meth:`update_approval`). Kept in memory,
        at most :attr:`RUN_DECISIONS_KEPT`, the least recently noted forgotten first.

        Raises:
            InvalidInputError: an id that is not a string, or a status other than approved or rejected.
        """
        for approval_id, status in decided.items():
            if not isinstance(approval_id, str) or status not in ("approved", "rejected"):
                raise InvalidInputError(f"remember_run_decisions: {approval_id!r} -> {status!r}: give approval id -> "
                                        "'approved' or 'rejected'")
        with self._lock:
            for approval_id, status in decided.items():
                self._run_decisions[approval_id] = status
                self._run_decisions.move_to_end(approval_id)
            while len(self._run_decisions) > self.RUN_DECISIONS_KEPT:
                self._run_decisions.popitem(last=False)

    def _run_decided(self, approval_id: str, status: str, *, take: bool) -> bool:
        """Whether this process decided the approval ``status`` through its run and has not answered for it yet;
        ``take``: answer for it now (forget it)."""
        with self._lock:
            if self._run_decisions.get(approval_id) != status:
                return False
            if take:
                del self._run_decisions[approval_id]
            return True

    async def records_run(self, run_id: str) -> bool:
        """Whether this table holds any approval of ``run_id`` (its own, or its members' for a team run)."""
        return await _approvals.holds_run(self, run_id)

    async def wait_for_records(self, expected: dict[str, set[str]], timeout: float = 10.0) -> bool:
        """Wait until each approval's record is in PostgreSQL with one of its expected statuses.

        ``expected``: approval id -> the statuses that will do (say ``{"pending"}`` for a run just
        paused). Polls every 5 ms, one query for all ids. Returns True once all are there, False
        (with a warning in the log) when ``timeout`` seconds pass first, PostgreSQL unreachable included.
        """
        if not expected:
            return True
        ids = list(expected)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        have: dict[str, str] = {}
        problem = ""
        while True:
            left = deadline - loop.time()
            try:  # every wait bounded by the time left: a pool waiting for PostgreSQL to come back included
                have = await _approvals.statuses(self, ids, timeout=max(left, 0.001))
                if all(have.get(i) in expected[i] for i in ids):
                    return True
            except (psycopg.OperationalError, psycopg_pool.PoolTimeout, TimeoutError) as exc:
                problem = f" (PostgreSQL unreachable: {type(exc).__name__})"
            if loop.time() >= deadline:
                missing = {i: have.get(i, "absent") for i in ids if have.get(i) not in expected[i]}
                _log.warning("%d approval record(s) of %s not as expected after %g s%s: %s", len(missing),
                             self.approvals_table, timeout, problem, dict(list(missing.items())[:5]))
                return False
            await asyncio.sleep(0.005)

    def get_approval_events(self, approval_id: str) -> list[dict[str, Any]]:
        """The append-only history of one approval, oldest first."""
        return [e.model_dump() for e in _approvals.events(self, approval_id)]

    def verify_event_chain(self, approval_id: str | None = None) -> dict[str, Any] | None:
        """The first broken link of the event history (one approval, or all), or None if intact.
        ``verify_trail`` checks more: rows, seals, checkpoints."""

        with self._checking() as conn:
            return _verify.first_break(conn, self.approvals_table, self.audit_keys, approval_id)

    def verify_trail(self, *, allow_unkeyed: bool = False, anchors: Iterable[dict[str, Any]] = ()) -> Any:
        """Check every approvals row against its events, every hash chain and seal (with :attr:`audit_keys`)
        and every checkpoint, in one snapshot; what each check finds and cannot: ``hitl.store.verify``.

        Returns a ``TrailReport``: ``problems`` (each with ``approval_id``, ``seq``, ``kind``, ``reason``;
        empty when all holds) and what was read. With audit keys, an event or row that is not keyed
        and that no keyed checkpoint covers is a problem, unless ``allow_unkeyed``. ``anchors``:
        checkpoint statements kept elsewhere, which must still be on the trail.
        """

        with self._checking() as conn:
            return _verify.verify(conn, self.approvals_table, self.audit_keys, allow_unkeyed=allow_unkeyed, anchors=anchors)

    def checkpoint(self, *, adopt_unkeyed: bool = False) -> dict[str, Any]:
        """Verify the trail, then record every approval's last event and row as a checkpoint MACed with the
        audit key. Returns its statement (``n``, ``statement``, ``key_id``, ``mac``): keep it elsewhere
        too, so that ``verify_trail(anchors=[...])`` finds a trail rolled back past it. Events and rows
        written without the key are refused, unless ``adopt_unkeyed`` vouches for them as they stand (do
        it once, when the key is turned on, for the trail from before it).

        Raises:
            HitlError: the trail does not verify (``verify_trail`` says why): nothing is recorded.
        """

        with self._checking() as conn:
            return _verify.checkpoint(conn, self.approvals_table, self.audit_keys, adopt_unkeyed=adopt_unkeyed)

    def verify_decisions(
        self, keys: Any = None, *, require_signed: bool = False, approval_id: str | None = None, chain: bool = True,
    ) -> list[dict[str, Any]]:
        """Check every decision on the trail offline: its signature against ``keys`` (a JWKS dict or
        file, or key id -> public key; default the keys this process trusts), against what the trail
        says was decided, by whom, on which approval; and the hash chain (``verify_event_chain``).

        Returns the problems found, each with ``approval_id``, ``seq``, ``kind`` and ``reason``;
        empty when all holds. ``require_signed`` also reports decisions that carry no signature;
        ``chain=False`` leaves the chain to ``verify_trail``.
        """

        trusted = signing.trusted() if keys is None else keys if isinstance(keys, dict) and "keys" not in keys \
            else signing.load_jwks(keys)
        with self._checking() as conn:
            rows = _verify.signed_rows(conn, self.approvals_table, approval_id)
            found = signed_trail.problems(rows, trusted, require_signed=require_signed)
        broken = self.verify_event_chain(approval_id) if chain else None
        if broken is not None:
            found.append({**broken, "kind": "chain"})
        return found

    @contextlib.contextmanager
    def _checking(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of the sync pool for the offline checks; PostgreSQL unreachable is a DatabaseUnavailableError."""
        try:
            with self.pool().connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            raise self.unreachable(exc) from None

    # ------------------------------------------------------------------ decisions through the audit API
    def update_approval(
        self,
        approval_id: str,
        *,
        expected_status: str | None = "pending",
        status: str,
        resolved_by: str | None = None,
        resolved_at: int | None = None,
        reason: str | None = None,
        resolution_data: dict[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any] | None:
        """Decide an approval as Agno's ``update_approval`` does, but through its run: the workflow decides.

        ``status`` ``approved`` confirms the call and ``rejected`` rejects it (with ``reason``, else
        ``resolution_data["reason"]``). The run applies the decision exactly once, the record follows,
        and the updated record is returned; a confirmation toward a quorum returns it still pending,
        the approver in ``context.approvals``. ``resolved_at`` is accepted for Agno's signature: the
        record's time is the one the run decided at.

        As Agno's, it answers None when there is nothing to update: no approval with this id (or one
        hidden by :meth:`delete_approval`), one not in ``expected_status`` (None: no guard), or one no
        longer pending (a run decides once), say because someone decided first. One exception, for Agno's flow "confirm locally,
        ``continue_run``, then ``update_approval(id, expected_status='pending', status='approved')``":
        when this process decided the approval ``status`` through its run (:meth:`remember_run_decisions`),
        the first such call returns the record as it stands, once the mirror shows the run's decision.
        Nothing is written, and ``resolved_by`` stays whoever decided in the run; a second call answers None.

        Raises:
            InvalidDecisionError: a status other than approved or rejected, or an approval that needs
                input or an external result rather than a yes or no.
            RunEndedError: the run has ended and its record is still pending (it was terminated).
            TemporalUnavailableError: Temporal did not answer and the run shows no decision on it yet.
            HitlError: the run decided but the mirror has not shown it within ``timeout`` seconds.
        """

        return run_sync(self.aupdate_approval(
            approval_id, expected_status=expected_status, status=status, resolved_by=resolved_by,
            resolved_at=resolved_at, reason=reason, resolution_data=resolution_data, timeout=timeout,
        ))

    async def aupdate_approval(
        self,
        approval_id: str,
        *,
        expected_status: str | None = "pending",
        status: str,
        resolved_by: str | None = None,
        resolved_at: int | None = None,
        reason: str | None = None,
        resolution_data: dict[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any] | None:
        """The async form of :meth:`update_approval`."""

        if reason is None and isinstance(resolution_data, dict) and isinstance(resolution_data.get("reason"), str):
            reason = resolution_data["reason"]
        updated = await deciding.update_approval(self, approval_id, expected_status=expected_status, status=status,
                                                resolved_by=resolved_by, reason=reason, timeout=timeout)
        return updated.agno() if updated is not None else None

    # ------------------------------------------------------------------ compliance
    def compliance_report(self, month: str | None = None) -> list[dict[str, Any]]:
        """Per tool and month: counts by status, approval rate, median and p95 wait in seconds.

        ``approval_rate`` is approved / (approved + rejected), None when neither happened; waits
        count decided approvals only. Approvals hidden by :meth:`delete_approval` are counted too.
        """
        # Approvals hidden by delete_approval are still counted here: they were decided, and the report is the trail's.
        rows = _approvals.compliance(self, month)
        report = []
        for r in rows:
            decided = r["approved"] + r["rejected"]
            report.append({**r, "approval_rate": r["approved"] / decided if decided else None})
        return report
