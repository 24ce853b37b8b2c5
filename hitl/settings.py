"""hitl's settings: every environment variable it reads (:class:`Environment`, the only reader of
``os.environ`` in hitl), and the Temporal connection built from them (:class:`Settings`); explicit
arguments override them.

Temporal's own client configuration is honoured (``temporalio.envconfig``): a TOML profile file
(``TEMPORAL_CONFIG_FILE``, else ``~/.config/temporalio/temporal.toml`` when it exists; the profile
``TEMPORAL_PROFILE``, else ``default``) and the ``TEMPORAL_*`` variables over it: ``TEMPORAL_ADDRESS``,
``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS``, ``TEMPORAL_TLS_CLIENT_CERT_PATH`` /
``_DATA``, ``TEMPORAL_TLS_CLIENT_KEY_PATH`` / ``_DATA``, ``TEMPORAL_TLS_SERVER_CA_CERT_PATH`` / ``_DATA``,
``TEMPORAL_TLS_SERVER_NAME``, ``TEMPORAL_GRPC_META_*``. The same file and variables work for the
``temporal`` CLI, so one profile serves both.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretBytes, SecretStr, ValidationError, model_validator

from hitl.errors import ConfigurationError

if TYPE_CHECKING:  # imported where used: the CLI reads settings, and temporalio.envconfig costs ~150 ms to import
    from temporalio.envconfig import ClientConfigProfile
    from temporalio.service import TLSConfig

__all__ = ["Environment", "Settings", "TlsSettings", "DEFAULT_TASK_QUEUE", "environment"]

DEFAULT_TASK_QUEUE = "hitl-agents"



def _var(name: str, doc: str, default: Any = None) -> Any:
    return Field(default, alias=name, description=doc)


class Environment(BaseModel):
    """Every environment variable hitl reads, with its type, default and meaning; read with :func:`environment`.

    Nothing else in hitl reads ``os.environ`` (the dev stack builds its children's environments; Temporal's
    own ``TEMPORAL_*`` connection variables and ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES`` are read by
    ``temporalio.envconfig`` and the OpenTelemetry SDK from the environment hitl hands them). An empty value
    counts as unset (one of spaces does not: it is refused where it is parsed, as before). Values are text,
    parsed where they are used with an error naming the variable; secrets are ``SecretStr`` and never printed.
    """

    # By alias only: a variable named like a field (`url`, `token`) must never fill a setting.
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    # Temporal (the connection itself: temporalio.envconfig's TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY...)
    temporal_task_queue: str | None = _var("TEMPORAL_TASK_QUEUE", "The prefix of each agent's own task queue, <prefix>.<agent name> (default hitl-agents); Agent(task_queue=) sets a queue outright.")
    temporal_profile: str | None = _var("TEMPORAL_PROFILE", "The profile of Temporal's profile file (default: default).")
    temporal_config_file: str | None = _var("TEMPORAL_CONFIG_FILE", "Temporal's profile file (default ~/.config/temporalio/temporal.toml).")

    # PostgreSQL and the audit trail
    database_url: SecretStr | None = _var("DATABASE_URL", "The PostgreSQL URL of agents' PostgresDb (PostgresDb(db_url=) overrides it), the service and the CLI.")
    approvals_table: str = _var("HITL_APPROVALS_TABLE", "The approvals table of the service and the CLI.", "approvals")
    audit_keys: SecretStr | None = _var("HITL_AUDIT_KEYS", "Keys of the trail's keyed hashes, seals and checkpoints, kid:BASE64,... (32 bytes or more each; the first keys, all verify; PostgresDb(audit_keys=) overrides).")
    audit_keys_file: str | None = _var("HITL_AUDIT_KEYS_FILE", "A file holding HITL_AUDIT_KEYS (a mounted secret).")

    # Workers
    max_cached_workflows: str | None = _var("HITL_MAX_CACHED_WORKFLOWS", "Runs a worker keeps in memory, a whole number >= 1; wins over HITL_WORKFLOW_CACHE_MIB (for runs larger than an agent's usual).")
    workflow_cache_mib: str | None = _var("HITL_WORKFLOW_CACHE_MIB", "Memory a worker process gives the runs it keeps, at about 0.1 MiB a run, shared among its queues (at least 50 runs each) (MiB, default 100). A paused run evicted from the cache costs nothing until a decision replays it.")
    tool_concurrency: str | None = _var("HITL_TOOL_CONCURRENCY", "Tool calls a worker runs at once per queue, as remote activities and again as local ones, a whole number >= 1 (default 64). Each sync tool gets a thread of its own when its activity starts, so its timeout measures the tool; calls beyond it wait in Temporal, where no timeout runs.")
    workflow_sandbox: str = _var("HITL_WORKFLOW_SANDBOX", "1: run the workflow code in Temporal's sandbox (it costs throughput and memory: see Speed); 0 (default): not.", "0")
    search_attributes: str = _var("HITL_SEARCH_ATTRIBUTES", "0/false/no/off: runs started from this process neither register nor keep the search attributes (default on).", "1")
    inline_worker: str = _var("HITL_INLINE_WORKER", "auto (default), on or off: a script that starts or continues a run of its own agents on a queue no worker polls serves them while it lives (on: any agent; off: never; auto: never with a signer, trusted decision keys, HITL_DECISION_KEYS or HITL_DEPLOYMENT_NAME).", "auto")
    decision_keys: str | None = _var("HITL_DECISION_KEYS", "Strict mode: the JWKS (file or JSON) of keys decisions must be signed by (workers); the keys hitl audit verify checks signatures with.")
    deployment_name: str | None = _var("HITL_DEPLOYMENT_NAME", "Worker versioning: the deployment's name (with HITL_BUILD_ID).")
    build_id: str | None = _var("HITL_BUILD_ID", "Worker versioning: this worker's build id (with HITL_DEPLOYMENT_NAME).")

    # Payload encryption
    encryption_keys: SecretStr | None = _var("HITL_ENCRYPTION_KEYS", "AES-GCM keys of payloads, kid:BASE64,... (the first encrypts, all decrypt); every process that reads or writes runs needs them.")
    encryption_keys_file: str | None = _var("HITL_ENCRYPTION_KEYS_FILE", "A file holding HITL_ENCRYPTION_KEYS (a mounted secret).")

    # One-click links
    link_secret: SecretStr | None = _var("HITL_LINK_SECRET", "The secret one-click links are signed with (links off when unset).")
    public_url: str | None = _var("HITL_PUBLIC_URL", "The service's URL as approvers reach it, for links.")
    link_ttl: str | None = _var("HITL_LINK_TTL", "How long a link stays valid (seconds, or 15m, 24h, 7d; up to 30 days; default 24h).")

    # OIDC
    oidc_issuer: str | None = _var("HITL_OIDC_ISSUER", "The issuer OIDC bearer tokens must name.")
    oidc_audience: str | None = _var("HITL_OIDC_AUDIENCE", "The audience OIDC bearer tokens must name.")
    oidc_jwks: str | None = _var("HITL_OIDC_JWKS", "The issuer's key set: an https:// URL (plain http:// only to this machine) or a file; a URL is fetched again for an unknown key id at most every 30 s.")
    oidc_groups_claim: str = _var("HITL_OIDC_GROUPS_CLAIM", "The claim listing the subject's groups.", "groups")
    oidc_subject_claim: str = _var("HITL_OIDC_SUBJECT_CLAIM", "The claim naming the principal.", "sub")

    # The decision service (hitl serve); values are checked by hitl.service.config.ServiceConfig
    signing_key: str | None = _var("HITL_SIGNING_KEY", "Strict mode: the PEM file of the key the service (or the CLI) signs decisions with.")
    signing_key_id: str | None = _var("HITL_SIGNING_KEY_ID", "The key id signatures name (default: derived from the key).")
    temporal_ui_url: str | None = _var("HITL_TEMPORAL_UI_URL", "Temporal's web UI, linked from the inbox.")
    slack_signing_secret: SecretStr | None = _var("HITL_SLACK_SIGNING_SECRET", "Slack's signing secret (the Slack receiver is off when unset).")
    slack_users: str | None = _var("HITL_SLACK_USERS", "Slack user ids to principals: U123=alice,U456=bob.")
    codec_cors_origin: str | None = _var("HITL_CODEC_CORS_ORIGIN", "The origin (Temporal's UI) allowed to call the codec server.")
    resolve_wait_seconds: str | None = _var("HITL_RESOLVE_WAIT_SECONDS", "Seconds a resolve that completes a pause waits for the run's next pause (default 60).")
    refusal_limit: str | None = _var("HITL_REFUSAL_LIMIT", "Refusals (403, 404) a principal may collect in the window before the routes that decide answer it 429 (default 20).")
    refusal_window_seconds: str | None = _var("HITL_REFUSAL_WINDOW_SECONDS", "The window of HITL_REFUSAL_LIMIT, in seconds (default 60).")
    max_streams_per_principal: str | None = _var("HITL_MAX_STREAMS_PER_PRINCIPAL", "Open /approvals/events streams one principal may hold (default 8; 429 past it).")
    header_timeout_seconds: str | None = _var("HITL_HEADER_TIMEOUT_SECONDS", "Seconds a client has to send a request's headers (default 10; 408 and closed otherwise).")
    body_timeout_seconds: str | None = _var("HITL_BODY_TIMEOUT_SECONDS", "Seconds a client has to send a request's body after its headers (default 30; 408 and closed otherwise).")

    # The CLI
    url: str | None = _var("HITL_URL", "The decision service the CLI calls (default http://127.0.0.1:8000).")
    token: SecretStr | None = _var("HITL_TOKEN", "The CLI's API token for the decision service.")
    user: str | None = _var("USER", "The operating-system user: who created a token, the CLI's --temporal decider.")

    # The model
    openai_base_url: str | None = _var("OPENAI_BASE_URL", "An OpenAI-compatible server, when a model is given no base_url.")
    openai_api_key: SecretStr | None = _var("OPENAI_API_KEY", "The model's API key, when a model is given none; it stays in the worker, never in Temporal history.")

    # Traces and metrics (OpenTelemetry's own variables, and hitl's metrics endpoint)
    otel_traces_exporter: str | None = _var("OTEL_TRACES_EXPORTER", "otlp, console or none (comma-separated); tracing is on when set, or an endpoint is.")
    otel_exporter_otlp_endpoint: str | None = _var("OTEL_EXPORTER_OTLP_ENDPOINT", "Where OTLP exports go (read by the exporter too).")
    otel_exporter_otlp_traces_endpoint: str | None = _var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "Where OTLP traces go (read by the exporter too).")
    otel_exporter_otlp_protocol: str | None = _var("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc (default) or http/protobuf.")
    otel_exporter_otlp_traces_protocol: str | None = _var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc or http/protobuf, for traces.")
    metrics_address: str | None = _var("HITL_METRICS_ADDRESS", "host:port of a worker's Prometheus endpoint (off when unset).")

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, values: Any) -> Any:
        if isinstance(values, Mapping):
            return {k: v for k, v in values.items() if v != ""}
        return values

    def named(self) -> dict[str, str]:
        """The variables that are set, by name, as text (secrets too: for code that reads a secret or its file)."""
        found = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if value is not None and field.alias and name in self.model_fields_set:
                found[field.alias] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        return found


def environment() -> Environment:
    """The environment as hitl reads it, now (a variable changed since is seen on the next call).

    Raises:
        ConfigurationError: a value of the wrong type, naming the variable.
    """
    try:
        return Environment.model_validate(os.environ)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"environment: {problems}") from None


def temporal_environment() -> dict[str, str]:
    """The whole environment, for ``temporalio.envconfig`` (it reads Temporal's own ``TEMPORAL_*`` variables)."""
    return dict(os.environ)

class TlsSettings(BaseModel):
    """TLS to Temporal: the server's CA and name, and a client certificate for mTLS.

    Certificates are held as read (PEM bytes); the private key is a secret and never shown.
    """

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    server_name: str | None = None
    """The name the server's certificate must carry, when it is not the address's host."""
    server_ca_cert: bytes | None = None
    """The CA the server's certificate must chain to; the system's roots when unset."""
    client_cert: bytes | None = None
    client_key: SecretBytes | None = None

    def connect_config(self) -> TLSConfig:
        from temporalio.service import TLSConfig

        key = self.client_key.get_secret_value() if self.client_key is not None else None
        return TLSConfig(domain=self.server_name, server_root_ca_cert=self.server_ca_cert,
                         client_cert=self.client_cert, client_private_key=key)


class Settings(BaseModel):
    """Where Temporal is, how to reach it, and which task queue the agents are served on.

    Environment: the ``TEMPORAL_*`` variables and profile file of ``temporalio.envconfig`` (see the
    module), with defaults ``localhost:7233`` and namespace ``default``; ``TEMPORAL_TASK_QUEUE``
    (``hitl-agents``) is hitl's own. Precedence: explicit arguments, then variables, then the profile
    file, then defaults. An API key turns TLS on (Temporal Cloud) unless TLS is disabled explicitly.
    """

    # A refused setting must not be quoted back: an API key or a private key would reach the log.
    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    temporal_address: str = Field(min_length=1)
    namespace: str = Field(min_length=1)
    task_queue: str = Field(min_length=1)
    api_key: SecretStr | None = None
    """``TEMPORAL_API_KEY`` or the profile's ``api_key``: sent as a bearer token (Temporal Cloud)."""
    tls: TlsSettings | None = None
    """TLS, when the profile or the variables ask for it (or an API key implies it)."""
    rpc_metadata: dict[str, SecretStr] = Field(default_factory=dict)
    """gRPC headers sent with every call (``TEMPORAL_GRPC_META_*``, the profile's ``grpc_meta``)."""
    profile: str | None = None
    """The profile these came from, for messages (``TEMPORAL_PROFILE``)."""

    @classmethod
    def from_env(
        cls,
        *,
        temporal_address: str | None = None,
        namespace: str | None = None,
        task_queue: str | None = None,
        profile: str | None = None,
        config_file: str | Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Settings:
        """Settings from ``env`` (default: this process's environment) and the profile file.

        Raises:
            ConfigurationError: an unreadable or malformed profile file, an unknown profile, a
                certificate file that cannot be read. The message names the file or profile.
        """
        env = temporal_environment() if env is None else dict(env)
        loaded = _load_profile(env, profile, config_file)
        tls: TlsSettings | None = None
        tls_wanted = loaded.api_key is not None
        if loaded.tls is not None:
            tls_wanted = not loaded.tls.disabled if loaded.tls.disabled is not None else True
        if tls_wanted:
            source = loaded.tls
            key = _read(source.client_private_key, "client key") if source else None
            tls = TlsSettings(
                server_name=source.server_name if source else None,
                server_ca_cert=_read(source.server_root_ca_cert, "server CA certificate") if source else None,
                client_cert=_read(source.client_cert, "client certificate") if source else None,
                client_key=SecretBytes(key) if key is not None else None,
            )
        return cls(
            temporal_address=temporal_address or loaded.address or "localhost:7233",
            namespace=namespace or loaded.namespace or "default",
            task_queue=task_queue or env.get("TEMPORAL_TASK_QUEUE") or DEFAULT_TASK_QUEUE,
            api_key=SecretStr(loaded.api_key) if loaded.api_key else None,
            tls=tls,
            rpc_metadata={k: SecretStr(v) for k, v in loaded.grpc_meta.items()},
            profile=profile or env.get("TEMPORAL_PROFILE") or None,
        )

    def connect_args(self) -> dict[str, Any]:
        """Keyword arguments for ``temporalio.client.Client.connect``: address, namespace, TLS, API key."""
        args: dict[str, Any] = {"target_host": self.temporal_address, "namespace": self.namespace,
                                "tls": self.tls.connect_config() if self.tls is not None else False}
        if self.api_key is not None:
            args["api_key"] = self.api_key.get_secret_value()
        if self.rpc_metadata:
            args["rpc_metadata"] = {k: v.get_secret_value() for k, v in self.rpc_metadata.items()}
        return args

    def connection_key(self) -> tuple[str, ...]:
        """What tells one connection from another (a digest: no secret in it), for caching clients."""
        digest = hashlib.sha256()
        for part in (self.api_key.get_secret_value() if self.api_key else "",
                     self.tls.model_dump_json() if self.tls else "",
                     self.tls.client_key.get_secret_value().hex() if self.tls and self.tls.client_key else "",
                     repr(sorted((k, v.get_secret_value()) for k, v in self.rpc_metadata.items()))):
            digest.update(part.encode() + b"\0")
        return (self.temporal_address, self.namespace, digest.hexdigest()[:32])


def _load_profile(env: dict[str, str], profile: str | None, config_file: str | Path | None) -> ClientConfigProfile:
    """The profile of the file (if any) with the variables applied over it."""
    from temporalio.envconfig import ClientConfigProfile

    path = Path(config_file) if config_file else (Path(env["TEMPORAL_CONFIG_FILE"]) if env.get("TEMPORAL_CONFIG_FILE") else None)
    name = profile or env.get("TEMPORAL_PROFILE") or None
    if path is not None and not path.is_file():
        raise ConfigurationError(f"Temporal profile file {path} (TEMPORAL_CONFIG_FILE) does not exist or is not a file")
    where = f"Temporal profile file {path}" if path is not None else "the default Temporal profile file"
    try:
        return ClientConfigProfile.load(name, config_source=path, config_file_strict=True, override_env_vars=env)
    except Exception as exc:  # the bridge's ConfigError: a TOML error, an unknown profile
        raise ConfigurationError(f"{where}, profile {name or 'default'!r}: {_without_source(str(exc))}") from None


def _without_source(text: str) -> str:
    """A loader error without the file's lines it quotes (a quoted line may hold an API key)."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and "|" not in line]
    return "; ".join(lines)[:300] or "unreadable"


def _read(source: Path | str | bytes | None, what: str) -> bytes | None:
    """A certificate or key named by a profile: a path (read now, so a bad one fails here) or the data itself."""
    if source is None:
        return None
    if isinstance(source, Path):
        try:
            return source.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the TLS {what} {source}: {exc.strerror}") from None
    return source.encode() if isinstance(source, str) else bytes(source)


def secret_setting(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """The text of the secret setting ``name``, or of the file ``<name>_FILE`` names (for secrets mounted as
    files, as compose and Kubernetes do), with the source to name in errors; None when neither is set.

    Raises:
        ConfigurationError: the file cannot be read.
    """
    if env.get(name, "").strip():
        return env[name], name
    if path := env.get(f"{name}_FILE", "").strip():
        try:
            return Path(path).read_text(), f"{name}_FILE {path}"
        except OSError as exc:
            raise ConfigurationError(f"{name}_FILE {path}: {exc.strerror}") from None
    return None
