"""The run's audit outbox: approval events queued by workflow code, mirrored beside the main loop.

Events get their ids, sequence numbers and times from history, so replays rebuild the same
outbox; the mirror activity's writes are idempotent, so a batch written twice (a retry, or one
carried over continue-as-new while in flight) changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

import hitl.workflows.audit as audit
from hitl._wire import AUDIT, NOTIFY, ApprovalEvent, MirrorRequest, Notification, NotificationKind, NotifyRequest, RunInput
from hitl.run import RunRequirement

# Keep mirroring until PostgreSQL is back: a run never closes with an approval unrecorded.
AUDIT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60))
BATCH = 100


class AuditOutbox:
    def __init__(self, run_id: str, run_input: RunInput, events: list[ApprovalEvent], seq: dict[str, int]) -> None:
        self._run_id = run_id
        self._input = run_input
        self.events = list(events)
        self.seq = dict(seq)
        self._writing = False

    @property
    def enabled(self) -> bool:
        return self._input.audit

    @property
    def empty(self) -> bool:
        return not self.events and not self._writing

    def record(
        self, req: RunRequirement, kind: str, *, payload: dict[str, Any] | None = None, status: str | None = None,
        requirement_kind: str | None = None,
    ) -> None:
        """Queue an event on the requirement's approval record (when the agent has a database)."""
        if not self.enabled:
            return
        approval_id = f"{self._run_id}/{req.id}"
        self.seq[approval_id] = self.seq.get(approval_id, 0) + 1
        self.events.append(audit.event(
            run_id=self._run_id, agent_name=self._input.agent_name, session_id=self._input.session_id,
            user_id=self._input.user_id, approval_type=req.approval_type, req=req, seq=self.seq[approval_id],
            kind=kind, at=workflow.now().timestamp(), payload=payload, status=status, requirement_kind=requirement_kind,
            team_run_id=self._input.team_run_id,
        ))

    async def mirror_forever(self) -> None:
        """Write the events in order, a batch at a time; runs as a task beside the main loop."""
        while True:
            await workflow.wait_condition(lambda: bool(self.events))
            batch = self.events[:BATCH]
            self._writing = True
            try:
                await workflow.execute_activity(
                    AUDIT, MirrorRequest(agent_name=self._input.audit_agent or self._input.agent_name, events=batch),
                    start_to_close_timeout=timedelta(seconds=30), retry_policy=AUDIT_RETRY, summary="audit mirror",
                )
            except (ActivityError, ApplicationError) as exc:  # non-retryable only: wait for a fixed worker
                workflow.logger.error("audit mirror failed, retrying in a minute: %s", exc)
                await workflow.sleep(timedelta(minutes=1))
                continue
            finally:
                self._writing = False
            del self.events[: len(batch)]

    async def drained(self) -> None:
        await workflow.wait_condition(lambda: self.empty)


NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1), maximum_attempts=5)


class NoticeQueue:
    """Notifications to approvers, sent one by one beside the main loop; failures are given up on."""

    def __init__(self, run_input: RunInput, notices: list[Notification]) -> None:
        self._input = run_input
        self.notices = list(notices)

    def send(self, req: RunRequirement, kind: NotificationKind, run_id: str) -> None:
        if not self._input.notify:
            return
        self.notices.append(Notification(
            kind=kind,
            run_id=run_id, agent_name=self._input.agent_name, requirement_id=req.id,
            tool_name=req.tool_execution.tool_name, arguments=req.tool_execution.arguments,
            approvers=req.approvers, deadline=req.deadline, escalation_level=req.escalation_level,
            at=workflow.now().timestamp(),
        ))

    async def send_forever(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self.notices))
            notice = self.notices[0]
            try:
                await workflow.execute_activity(
                    NOTIFY, NotifyRequest(agent_name=self._input.agent_name, notification=notice),
                    start_to_close_timeout=timedelta(seconds=30), retry_policy=NOTIFY_RETRY, summary="notify",
                )
            except (ActivityError, ApplicationError) as exc:
                # A notifier that keeps failing never holds up a decision or the audit trail.
                workflow.logger.warning("notification %s for %s given up: %s", notice.kind, notice.requirement_id, exc)
            del self.notices[0]

    async def drained(self, within: timedelta) -> None:
        """Give pending notifications a bounded time to go out before the run closes."""
        if self.notices:
            try:
                await workflow.wait_condition(lambda: not self.notices, timeout=within)
            except TimeoutError:
                workflow.logger.warning("closing with %d notifications unsent", len(self.notices))
