"""Moving a paused run to its worker deployment's current version, when an operator asks.

Runs are pinned to the deployment version they started on (``hitl.worker.versioning``). An ``upgrade``
signal (``hitl runs upgrade``) is remembered here; the run acts on it at its pause, the one
boundary where nothing is in flight: it continues as new with Temporal's auto-upgrade, carrying
its state as a long run does, and its next run is on the current version. A run that is not
paused acts at its next pause. A team run whose members are at work, and a member run, stay on
their version: their children and parent would be split across versions.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RawValue

import hitl.workflows.generation as generation
from hitl._wire import UPGRADE

UPGRADE_PATCH = "hitl-upgrade-on-request"


class UpgradeOnRequest:
    """The ``upgrade`` signal's handler, mixed into the run workflow."""

    _upgrade_asked: bool = False

    # Any payload, or none, is accepted and ignored: the request itself is the message, and a
    # handler never raises into the workflow task.
    @workflow.signal(name=UPGRADE)
    def upgrade(self, *_: RawValue) -> None:
        """Move to the deployment's current version at the pause."""
        # Older code received this signal too, and ignored it: such a history must replay as it ran
        # (the request would wake the pause and restart its timers). The marker is recorded here.
        if generation.patched(UPGRADE_PATCH):
            self._upgrade_asked = True


def continue_on_current_version(carried: object) -> None:
    """Continue as new, the next run on the task queue's current version (never returns)."""
    workflow.continue_as_new(carried, initial_versioning_behavior=workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE)
