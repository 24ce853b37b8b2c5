"""The decision service's settings, read once from the environment; explicit arguments override them."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

from hitl import limits
from hitl.config import Settings
from hitl.oidc import OidcSettings

__all__ = ["ServiceConfig"]


class ServiceConfig(BaseModel):
    """What ``hitl serve`` runs with.

    Environment: ``DATABASE_URL`` and ``HITL_APPROVALS_TABLE`` (``approvals``) for the audit
    trail and the API tokens; ``TEMPORAL_*`` for Temporal; ``HITL_SIGNING_KEY`` (a PEM file) and
    ``HITL_SIGNING_KEY_ID`` to sign decisions; ``HITL_OIDC_*`` for OIDC bearer tokens
    (``hitl.oidc.OidcSettings``); ``HITL_RESOLVE_WAIT_SECONDS`` (60): how long a decision that
    completes a pause waits for the run's next pause before answering with the run as it stands.
    """

    model_config = ConfigDict(frozen=True)

    database_url: str = Field(min_length=1)
    approvals_table: str = "approvals"
    temporal: Settings
    oidc: OidcSettings | None = None
    agent_modules: tuple[str, ...] = ()
    """Modules whose Agents and Teams runs may be started for (``POST /runs``)."""
    resolve_wait_seconds: float = Field(default=60.0, ge=0, le=3600)
    signing_key: str | None = None
    """A PEM Ed25519 private key (``hitl keys generate``): every decision and change the service
    forwards is signed with it, for strict workers (``HITL_DECISION_KEYS``) to check."""
    signing_key_id: str | None = None
    max_body_bytes: int = Field(default=limits.MAX_REQUEST_BYTES + 64 * 1024, ge=1024)
    """Larger request bodies are refused with 413 before they are read whole."""

    @classmethod
    def from_env(cls, **overrides: object) -> ServiceConfig:
        env = os.environ
        values: dict[str, object] = {
            "database_url": env.get("DATABASE_URL", ""),
            "approvals_table": env.get("HITL_APPROVALS_TABLE") or "approvals",
            "temporal": Settings.from_env(),
            "oidc": OidcSettings.from_env(dict(env)),
        }
        for key in ("signing_key", "signing_key_id"):
            if env.get(f"HITL_{key.upper()}"):
                values[key] = env[f"HITL_{key.upper()}"]
        if env.get("HITL_RESOLVE_WAIT_SECONDS"):
            values["resolve_wait_seconds"] = env["HITL_RESOLVE_WAIT_SECONDS"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
