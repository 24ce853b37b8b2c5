"""Traces and metrics: what every Temporal client and worker hitl makes is built with.

Off by default, and then free: no interceptor, the SDK's default runtime, and ``span()`` is a
null context. Traces are on when ``configure()`` was called, or when the standard variables
choose an exporter (``OTEL_TRACES_EXPORTER=otlp|console``, or ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` set); they need the ``opentelemetry-sdk`` package.
The SDK's Prometheus endpoint is on when ``HITL_METRICS_ADDRESS`` (``0.0.0.0:9464``) is set.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from hitl._wire import DECISION_HANDLERS
from hitl.errors import ConfigurationError
from hitl.settings import environment

__all__ = ["configure", "reset", "enabled", "span", "client_interceptors", "runtime", "DECISION_HANDLERS"]


BUCKETS: dict[str, list[float]] = {
    # A decision takes from seconds to days; a mirror write from milliseconds to a PostgreSQL outage.
    "hitl_decision_seconds": [1, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400],
    "hitl_mirror_lag_seconds": [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
}
_lock = threading.Lock()
_provider: Any = None  # an opentelemetry TracerProvider, once tracing is on
_from_env_checked = False
_runtime: Runtime | None = None
_unavailable_warned = False


def configure(tracer_provider: Any = None) -> None:
    """Turn tracing on for this process, with ``tracer_provider`` or one built from ``OTEL_*``.

    Call it before the first Temporal client is made (clients are cached per event loop). With no
    argument the exporters are those ``OTEL_TRACES_EXPORTER`` names (default ``otlp``; the OTLP
    exporter reads ``OTEL_EXPORTER_OTLP_*`` itself), and the provider becomes the global one.

    Raises:
        ConfigurationError: ``opentelemetry-sdk`` (or the chosen exporter's package) is not installed,
            or an exporter name is unknown.
    """
    global _provider, _from_env_checked
    with _lock:
        _from_env_checked = True
        _provider = tracer_provider if tracer_provider is not None else _provider_from_env()


def reset() -> None:
    """Tracing off again (tests): later clients get no interceptor."""
    global _provider, _from_env_checked
    with _lock:
        _provider, _from_env_checked = None, True


def _env_wants_traces() -> bool:
    env = environment()
    names = (env.otel_traces_exporter or "").strip().lower()
    if names:
        return names != "none"
    return bool(env.otel_exporter_otlp_endpoint or env.otel_exporter_otlp_traces_endpoint)


def _provider_from_env() -> Any:
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        raise ConfigurationError("tracing needs the opentelemetry-sdk package: pip install 'hitl[otel]'") from None
    provider = TracerProvider()  # service.name and resource attributes from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
    for name in (environment().otel_traces_exporter or "otlp").split(","):
        name = name.strip().lower()
        if name in ("", "none"):
            continue
        if name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name == "otlp":
            provider.add_span_processor(BatchSpanProcessor(_otlp_exporter()))
        else:
            raise ConfigurationError(f"OTEL_TRACES_EXPORTER={name!r}: hitl knows otlp, console and none")
    trace.set_tracer_provider(provider)
    return provider


def _otlp_exporter() -> Any:
    env = environment()
    protocol = (env.otel_exporter_otlp_traces_protocol or env.otel_exporter_otlp_protocol or "grpc").strip().lower()
    try:
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as OverGrpc

            return OverGrpc()
        # http/protobuf
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as OverHttp

        return OverHttp()
    except ImportError:
        raise ConfigurationError(
            f"OTLP over {protocol} needs the opentelemetry-exporter-otlp package: pip install 'hitl[otel]'") from None


def _tracer_provider() -> Any:
    """The provider when tracing is on, else None; the environment is read once, on first use."""
    global _provider, _from_env_checked
    if not _from_env_checked:
        with _lock:
            if not _from_env_checked:
                _from_env_checked = True
                if _env_wants_traces():
                    _provider = _provider_from_env()
    return _provider


def enabled() -> bool:
    """Whether spans are made in this process."""
    return _tracer_provider() is not None


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, str | int]) -> Iterator[None]:
    """A span around a model or tool call (activity code), in the activity's trace; nothing when off.

    Attributes name the agent, the tool, the run: never arguments, outputs or credentials.
    """
    provider = _tracer_provider()
    if provider is None:
        yield
        return
    from opentelemetry.trace import Status, StatusCode

    # No exception events or messages: a tool's error may quote its arguments.
    with provider.get_tracer("hitl").start_as_current_span(name, attributes=dict(attributes), record_exception=False,
                                                           set_status_on_exception=False) as current:
        try:
            yield
        except BaseException as exc:
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def client_interceptors() -> list[Any]:
    """Interceptors for every Temporal client hitl makes (those that are also worker interceptors
    are used by the workers made from that client): Temporal's tracing interceptor when tracing is on,
    made safe by ``hitl.observability.tracing`` (exception types only, malformed headers ignored), or none with a
    warning when this temporalio's tracing interceptor cannot be imported."""
    global _unavailable_warned
    provider = _tracer_provider()
    if provider is None:
        return []
    try:
        from hitl.observability import tracing as _tracing
    except ImportError as exc:
        if not _unavailable_warned:
            _unavailable_warned = True
            logging.getLogger("hitl.observability.telemetry").warning("tracing: Temporal's tracing interceptor is unavailable (%s): "
                                                        "no Temporal spans", exc)
        return []
    return [_tracing.interceptor(provider.get_tracer("temporalio"))]


def runtime() -> Runtime | None:
    """The SDK runtime for every client: with a Prometheus endpoint at ``HITL_METRICS_ADDRESS`` when set,
    else None (the SDK's default). One per process: the endpoint binds its port once.

    Raises:
        ConfigurationError: ``HITL_METRICS_ADDRESS`` is not ``host:port``.
    """
    global _runtime
    address = (environment().metrics_address or "").strip()
    if not address:
        return None
    with _lock:
        if _runtime is None:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigurationError(f"HITL_METRICS_ADDRESS={address!r}: expected host:port, e.g. 0.0.0.0:9464")
            # Seconds, not milliseconds, for the SDK's durations and hitl's own histograms alike.
            _runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
                bind_address=address, durations_as_seconds=True, histogram_bucket_overrides=BUCKETS)))
        return _runtime
