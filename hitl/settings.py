"""Connection settings, read once from the environment; explicit arguments override them.

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
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretBytes, SecretStr
from temporalio.envconfig import ClientConfigProfile
from temporalio.service import TLSConfig

from hitl.errors import ConfigurationError

__all__ = ["Settings", "TlsSettings", "DEFAULT_TASK_QUEUE"]

DEFAULT_TASK_QUEUE = "hitl-agents"


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
        env = dict(os.environ if env is None else env)
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
