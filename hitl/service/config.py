"""The decision service's settings, read once from the environment; explicit arguments override them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from hitl import limits
from hitl.errors import ConfigurationError
from hitl.identity import check_principal_name
from hitl.security.links import check_secret
from hitl.security.oidc import OidcSettings
from hitl.settings import Settings, environment

__all__ = ["ServiceConfig"]


class ServiceConfig(BaseModel):
    """What ``hitl serve`` runs with.

    Environment: ``DATABASE_URL`` and ``HITL_APPROVALS_TABLE`` (``approvals``) for the audit
    trail and the API tokens; ``TEMPORAL_*`` for Temporal; ``HITL_SIGNING_KEY`` (a PEM file) and
    ``HITL_SIGNING_KEY_ID`` to sign decisions; ``HITL_OIDC_*`` for OIDC bearer tokens
    (``hitl.security.oidc.OidcSettings``); ``HITL_RESOLVE_WAIT_SECONDS`` (60): how long a decision that
    completes a pause waits for the run's next pause before answering with the run as it stands.
    """

    # A refused setting must not be quoted back: the secrets, and a DATABASE_URL's password, would reach the log.
    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

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
    public_url: str | None = None
    """Where people reach this service (``HITL_PUBLIC_URL``, e.g. ``https://hitl.example.com``): the
    base of one-click links and of the inbox's own links."""
    link_secret: SecretStr | None = None
    """``HITL_LINK_SECRET``: the HMAC key of one-click decision links (``hitl.security.links``), at least 32
    bytes. The workers that send notifications hold the same one, with ``HITL_PUBLIC_URL`` and
    ``HITL_LINK_TTL``, and make the links; the service checks them. Whoever holds it can mint a link
    for any approver. Without it, ``/links/...`` answers 503."""
    temporal_ui_url: str | None = None
    """``HITL_TEMPORAL_UI_URL``: the Temporal UI, for the inbox's link to a run."""
    slack_signing_secret: SecretStr | None = None
    """``HITL_SLACK_SIGNING_SECRET``: verifies the Slack-style interactive webhook's requests
    (``POST /slack/interactions``); without it, that route answers 503."""
    slack_users: dict[str, str] = Field(default_factory=dict)
    """``HITL_SLACK_USERS`` (``U012AB=alice,U034CD=bob``): the Slack users allowed to decide, each
    mapped to the hitl principal it decides as. Anyone else is refused. A principal with a reserved
    name (``group:...``, ``system:...``, ``policy:...``) is refused at start."""
    refusal_limit: int = Field(default=20, ge=1, le=100_000)
    """``HITL_REFUSAL_LIMIT``: refused decisions (403, or 404 for an approval it may not see) a principal may
    collect in ``refusal_window_seconds`` before the routes that decide answer it 429."""
    refusal_window_seconds: float = Field(default=60.0, gt=0, le=86_400)
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    """``HITL_HEADER_TIMEOUT_SECONDS``: a request's headers must arrive within this (408 and closed otherwise)."""
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    """``HITL_BODY_TIMEOUT_SECONDS``: a request's body must arrive within this after its headers."""
    max_streams_per_principal: int = Field(default=8, ge=1, le=10_000)
    """``HITL_MAX_STREAMS_PER_PRINCIPAL``: open ``/approvals/events`` streams one principal may hold (429 past it)."""
    codec_cors_origin: str | None = None
    """``HITL_CODEC_CORS_ORIGIN`` (e.g. ``http://localhost:8233``): the Temporal UI's origin, the only one
    a browser may call the codec server (``/codec/...``) from. The keys are ``HITL_ENCRYPTION_KEYS``
    (``hitl.security.codec``), the same as the workers'."""

    @field_validator("link_secret")
    @classmethod
    def _link_secret_strong_enough(cls, value: SecretStr | None) -> SecretStr | None:

        if value is not None:
            check_secret(value.get_secret_value())
        return value

    @field_validator("slack_users")
    @classmethod
    def _slack_principals_not_reserved(cls, value: dict[str, str]) -> dict[str, str]:
        from hitl.errors import ConfigurationError, InvalidInputError

        for slack_user, principal in value.items():
            try:
                check_principal_name(principal, f"HITL_SLACK_USERS: {slack_user[:60]} maps to")
            except InvalidInputError as exc:
                raise ConfigurationError(str(exc)) from None
        return value

    @classmethod
    def from_env(cls, **overrides: object) -> ServiceConfig:
        env = environment().named()
        values: dict[str, object] = {
            "database_url": env.get("DATABASE_URL", ""),
            "approvals_table": env.get("HITL_APPROVALS_TABLE") or "approvals",
            "temporal": Settings.from_env(),
            "oidc": OidcSettings.from_env(env),
        }
        for key in ("signing_key", "signing_key_id"):
            if env.get(f"HITL_{key.upper()}"):
                values[key] = env[f"HITL_{key.upper()}"]
        for key in ("public_url", "link_secret", "temporal_ui_url", "slack_signing_secret", "codec_cors_origin"):
            if env.get(f"HITL_{key.upper()}"):
                values[key] = env[f"HITL_{key.upper()}"]
        if env.get("HITL_SLACK_USERS"):
            values["slack_users"] = _pairs(env["HITL_SLACK_USERS"], "HITL_SLACK_USERS")
        for key in ("resolve_wait_seconds", "refusal_limit", "refusal_window_seconds", "max_streams_per_principal",
                    "header_timeout_seconds", "body_timeout_seconds"):
            if env.get(f"HITL_{key.upper()}"):
                values[key] = env[f"HITL_{key.upper()}"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)


def _pairs(text: str, name: str) -> dict[str, str]:
    """``a=b,c=d`` as a dict; a malformed item names the variable."""

    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigurationError(f"{name}: {item!r} is not ID=principal")
        pairs[key.strip()] = value.strip()
    return pairs
