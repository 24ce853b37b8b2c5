"""Worker versioning: workers belong to a deployment version, runs are pinned to the version they
started on, and a paused run moves to the current version at its pause, when asked.

A run that waits for days must survive new worker code. Temporal's worker deployments give each
worker a version (``HITL_DEPLOYMENT_NAME`` + ``HITL_BUILD_ID``); hitl's runs are *pinned*: every
task of a run goes to workers of the version it started on, so code changes never meet a run
half-way. Rolling out a new version:

0. the first time: ``temporal worker deployment set-current-version`` for the first build id,
   or new runs wait for an unversioned worker that never comes;
1. start workers of the new build id beside the old ones;
2. ``temporal worker deployment set-current-version --deployment-name NAME --build-id NEW``:
   new runs start on it;
3. ``hitl runs upgrade --temporal --all-paused``: each paused run continues as new, at its pause,
   with Temporal's auto-upgrade, so its next run is on the current version (it carries its
   conversation, requirements, decisions so far and audit outbox, as a long run's
   continue-as-new does). Runs that are working (a model or tool call in flight) finish on their
   version;
4. once ``temporal worker deployment describe-version`` shows the old version drained, stop its
   workers.

hitl's workflow code is also patched and replay-tested, so without versioning (no
``HITL_DEPLOYMENT_NAME``) a new worker still replays old runs safely.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import WorkerDeploymentConfig

from hitl._core.listing import list_runs
from hitl._wire import UPGRADE
from hitl.errors import ConfigurationError, RunNotFoundError, TemporalUnavailableError
from hitl.settings import environment

__all__ = ["Deployment", "upgrade", "upgrade_paused"]


@dataclass(frozen=True)
class Deployment:
    """The worker deployment version a worker belongs to.

    Environment: ``HITL_DEPLOYMENT_NAME`` and ``HITL_BUILD_ID`` (both, or neither: unversioned).
    """

    name: str
    build_id: str

    def __post_init__(self) -> None:
        for field, value in (("deployment name", self.name), ("build id", self.build_id)):
            if not value or not value.strip() or "." in value or len(value) > 255:
                raise ConfigurationError(f"worker {field} {value[:80]!r}: 1-255 characters, no dots")

    @classmethod
    def from_env(cls) -> Deployment | None:
        env = environment()
        name, build = env.deployment_name, env.build_id
        if not name and not build:
            return None
        if not name or not build:
            raise ConfigurationError("set both HITL_DEPLOYMENT_NAME and HITL_BUILD_ID for a versioned worker, or neither")
        return cls(name, build)

    def config(self) -> WorkerDeploymentConfig:
        """Versioned, with hitl's runs pinned to the version they start on."""
        return WorkerDeploymentConfig(version=WorkerDeploymentVersion(self.name, self.build_id),
                                      use_worker_versioning=True, default_versioning_behavior=VersioningBehavior.PINNED)

    def __str__(self) -> str:
        return f"{self.name}.{self.build_id}"


async def upgrade(client: Client, run_id: str) -> None:
    """Ask a run to move to its deployment's current version at its pause (a signal: a paused run
    continues as new once no caller is waiting on it; a working run does so at its next pause).

    Raises:
        RunNotFoundError: no open run has that id.
        TemporalUnavailableError: Temporal cannot be reached.
    """
    try:
        await client.get_workflow_handle(run_id).signal(UPGRADE)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise RunNotFoundError(f"run {run_id!r}: no open run to upgrade (unknown, or it has ended)") from None
        raise TemporalUnavailableError(f"run {run_id!r}: the upgrade signal was not sent ({exc.message})") from None


async def upgrade_paused(client: Client, *, agent: str | None = None, limit: int = 10_000) -> list[str]:
    """Ask every paused run (of ``agent``) to move to the current version; the run ids asked.

    A team's member runs are not asked: they stay with their team (which, with members at work,
    stays on its version too, and finishes there).
    """

    asked = []
    for run in await list_runs(client, status="paused", agent=agent, limit=limit):
        if run.team_run_id is None:
            await upgrade(client, run.run_id)
            asked.append(run.run_id)
    return asked
