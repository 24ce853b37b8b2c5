"""Temporal's tracing interceptor, made safe for hitl: no error messages exported, no bad header fatal,
and decisions traced in their sender's trace.

- **Exception types only.** Upstream ``TracingInterceptor`` records an exception event (message,
  stack trace) on ``RunActivity:*`` spans, sets their status to ``"{type}: {message}"`` and records
  the failure on ``CompleteWorkflow:*``. A tool's error may quote its arguments (a card number), so
  the interceptor is given a tracer (:class:`TypeOnlyTracer`, public OpenTelemetry API only) whose
  spans keep the status code and the exception's type, never its message or stack trace.
- **Malformed ``_tracer-data`` headers are dropped**, with one warning, before upstream decodes them:
  upstream would raise inside the signal or update handler and fail every workflow task of the run.
- **Decisions in their sender's trace.** ``TracingInterceptor`` parents every workflow span on the
  trace that *started* the run and only links an update's or signal's sender. A decision comes days
  later from someone else (an HTTP request to ``hitl serve``): its handler, its ``hitl.decision``
  span and the tool call it lets run belong in that request's trace. This needs private parts of
  temporalio's interceptor (``INTERNALS``); :func:`interceptor` checks they exist and otherwise falls
  back to upstream's behaviour with one warning. Only headers already in history are read and
  nothing is written to it, so replays are unchanged (workflow spans are made only when not
  replaying, as upstream). Nothing here ever raises into workflow code.
- **hitl's own spans from the worker alone.** Upstream makes workflow spans only under a parent
  propagated from a traced caller. ``hitl.pause`` and ``hitl.decision`` (:data:`ALWAYS_MADE`) are
  made by a traced worker even for a run started and decided by processes without tracing: each is
  then the root of a trace of its own, and carries nothing on (the tool's activity gets no tracing
  header it would not have had).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import opentelemetry.trace
import temporalio.worker
import temporalio.workflow
from opentelemetry.trace import Status, StatusCode
from temporalio.contrib.opentelemetry import TracingInterceptor, TracingWorkflowInboundInterceptor

from hitl._wire import DECISION_HANDLERS

try:
    from temporalio.contrib.opentelemetry._context import attached_context
except ImportError:  # a temporalio that moved it: decisions are traced as upstream does
    attached_context = None  # type: ignore[assignment]

Carrier = dict[str, Any]
_log = logging.getLogger("hitl.observability.telemetry")
_warned: set[str] = set()

INTERNALS: dict[str, frozenset[str]] = {
    "_completed_span": frozenset({"link_context_carrier", "add_to_outbound_model", "additional_attributes", "kind"}),
    "_from_context": frozenset(),
    "_set_on_context": frozenset(),
    "_load_workflow_context_carrier": frozenset(),
}
"""The private methods of ``TracingWorkflowInboundInterceptor`` decision tracing calls, with the keywords it passes."""

ALWAYS_MADE = frozenset({"hitl.pause", "hitl.decision"})
"""Workflow spans a traced worker makes even with no caller's trace to put them in (then as a root span)."""


def missing_internals(cls: type = TracingWorkflowInboundInterceptor) -> list[str]:
    """What decision tracing needs that this temporalio lacks (empty when it can be used)."""
    missing = [] if attached_context is not None else ["temporalio.contrib.opentelemetry._context.attached_context"]
    for name, keywords in INTERNALS.items():
        method = getattr(cls, name, None)
        try:
            params = set(inspect.signature(method).parameters) if callable(method) else None
        except (TypeError, ValueError):
            params = None
        if params is None:
            missing.append(name)
        else:
            missing += [f"{name}({k}=...)" for k in sorted(keywords - params)]
    return missing


def parentless_spans_supported(cls: type = TracingInterceptor) -> bool:
    """Whether this temporalio lets the worker make :data:`ALWAYS_MADE` spans without a caller's trace."""
    try:
        from temporalio.contrib.opentelemetry._interceptor import _CompletedWorkflowSpanParams

        fields = {f.name for f in dataclasses.fields(_CompletedWorkflowSpanParams)}
    except Exception:
        return False
    return "parent_missing" in fields and "name" in fields and callable(getattr(cls, "_completed_workflow_span", None))


def _warn_once(key: str, message: str) -> None:
    """One warning per process and cause; from workflow code through ``workflow.logger`` (silent on replay)."""
    in_workflow = temporalio.workflow.in_workflow()
    if key in _warned or (in_workflow and temporalio.workflow.unsafe.is_replaying()):
        return
    _warned.add(key)
    (temporalio.workflow.logger if in_workflow else _log).warning("tracing: %s", message)


def _type_name(exc: BaseException | None) -> str | None:
    return type(exc).__name__ if exc is not None else None


class TypeOnlySpan(opentelemetry.trace.Span):
    """A span whose failures are recorded by exception type only: never a message or stack trace."""

    def __init__(self, span: opentelemetry.trace.Span) -> None:
        self._span = span

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # Upstream sets "{type}: {message}" from its ``except`` block: keep the code, name the type being handled.
        code = status.status_code if isinstance(status, Status) else status
        self._span.set_status(Status(code, _type_name(sys.exc_info()[1]) if code is StatusCode.ERROR else None))

    def record_exception(self, exception: BaseException, attributes: Any = None, timestamp: int | None = None,
                         escaped: bool = False) -> None:
        self._span.add_event("exception", {"exception.type": type(exception).__name__}, timestamp)

    def end(self, end_time: int | None = None) -> None:
        self._span.end(end_time)

    def get_span_context(self) -> opentelemetry.trace.SpanContext:
        return self._span.get_span_context()

    def set_attributes(self, attributes: Any) -> None:
        self._span.set_attributes(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        self._span.set_attribute(key, value)

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        self._span.add_event(name, attributes, timestamp)

    def add_link(self, context: opentelemetry.trace.SpanContext, attributes: Any = None) -> None:
        self._span.add_link(context, attributes)

    def update_name(self, name: str) -> None:
        self._span.update_name(name)

    def is_recording(self) -> bool:
        return self._span.is_recording()


_INTERNAL = opentelemetry.trace.SpanKind.INTERNAL


class TypeOnlyTracer(opentelemetry.trace.Tracer):
    """The interceptor's tracer: its spans are :class:`TypeOnlySpan` (the SDK's exception recording is off)."""

    def __init__(self, tracer: opentelemetry.trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(self, name: str, context: Any = None, kind: opentelemetry.trace.SpanKind = _INTERNAL,
                   attributes: Any = None, links: Any = None, start_time: int | None = None,
                   record_exception: bool = True, set_status_on_exception: bool = True) -> opentelemetry.trace.Span:
        return TypeOnlySpan(self._tracer.start_span(name, context, kind=kind, attributes=attributes, links=links,
                                                    start_time=start_time, record_exception=False,
                                                    set_status_on_exception=False))

    @contextmanager
    def start_as_current_span(  # type: ignore[override]  # a plain context manager, not OpenTelemetry's agnostic one
            self, name: str, context: Any = None, kind: opentelemetry.trace.SpanKind = _INTERNAL,
            attributes: Any = None, links: Any = None, start_time: int | None = None, record_exception: bool = True,
            set_status_on_exception: bool = True, end_on_exit: bool = True) -> Iterator[opentelemetry.trace.Span]:
        with self._tracer.start_as_current_span(name, context, kind=kind, attributes=attributes, links=links,
                                                start_time=start_time, record_exception=False,
                                                set_status_on_exception=False, end_on_exit=end_on_exit) as span:
            try:
                yield TypeOnlySpan(span)
            except Exception as exc:
                if record_exception:
                    span.add_event("exception", {"exception.type": type(exc).__name__})
                if set_status_on_exception:
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise


class SafeWorkflowInterceptor(TracingWorkflowInboundInterceptor):
    """Upstream's workflow side, except that a malformed tracing header is dropped instead of raised on."""

    def _carrier(self, payload: Any, where: str) -> Carrier | None:
        """The carrier a header holds; None when absent or malformed (warned once)."""
        if not payload:
            return None
        try:
            value = self.payload_converter.from_payloads([payload])[0]
        except Exception:
            value = None
        if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str | list) for k, v in value.items()):
            return value
        _warn_once("header", f"a malformed {self.header_key!r} header ({where}) was ignored")
        return None

    def _clean(self, input: Any, where: str) -> Any:
        """``input`` without its tracing header when that header is malformed."""
        headers = input.headers or {}
        if self.header_key in headers and self._carrier(headers[self.header_key], where) is None:
            input.headers = {k: v for k, v in headers.items() if k != self.header_key}
        return input

    def _load_workflow_context_carrier(self) -> Carrier | None:
        try:
            carrier = super()._load_workflow_context_carrier()
        except Exception:
            carrier = None
            _warn_once("header", f"a malformed {self.header_key!r} header (workflow start) was ignored")
        return carrier if isinstance(carrier, dict) else None

    async def handle_signal(self, input: temporalio.worker.HandleSignalInput) -> None:
        return await super().handle_signal(self._clean(input, f"signal {input.signal}"))

    def handle_update_validator(self, input: temporalio.worker.HandleUpdateInput) -> None:
        return super().handle_update_validator(self._clean(input, f"update {input.update}"))

    async def handle_update_handler(self, input: temporalio.worker.HandleUpdateInput) -> Any:
        return await super().handle_update_handler(self._clean(input, f"update {input.update}"))

    async def handle_query(self, input: temporalio.worker.HandleQueryInput) -> Any:
        return await super().handle_query(self._clean(input, f"query {input.query}"))


class _Holder:
    """Receives the carrier of a span just made (``_completed_span``'s ``add_to_outbound_model``)."""

    headers: Mapping[str, Any] | None = None


class DecisionWorkflowInterceptor(SafeWorkflowInterceptor):
    """Runs decision handlers in the sender's trace; gives workflow code spans and contexts to carry."""

    def _sender(self, headers: Mapping[str, Any], name: str) -> Carrier | None:
        return self._carrier(headers.get(self.header_key), name) if name in DECISION_HANDLERS else None

    @contextmanager
    def within(self, carrier: Carrier | None) -> Iterator[None]:
        """Make ``carrier``'s span the parent of what the workflow starts meanwhile (a tool's activity)."""
        context = None
        if carrier:
            try:
                context = self._set_on_context(self.text_map_propagator.extract(carrier))
            except Exception as exc:
                _warn_once("within", f"a decision's context could not be used ({type(exc).__name__})")
        if context is None:
            yield
            return
        with attached_context(context):
            yield

    def span(self, name: str, attributes: Mapping[str, str | int]) -> Carrier | None:
        """A completed span under the current one; its carrier (None when replaying, untraced or failing).

        With no current span (no traced process started or decided the run) an :data:`ALWAYS_MADE`
        span is still made, as a root; its carrier is not returned then, so that nothing started
        after it (a tool's activity) gets a tracing header its run never had.
        """
        holder = _Holder()
        try:
            parented = opentelemetry.trace.get_current_span() is not opentelemetry.trace.INVALID_SPAN
            self._completed_span(name, additional_attributes=dict(attributes), add_to_outbound_model=holder)
        except Exception as exc:
            _warn_once("span", f"span {name} not made ({type(exc).__name__})")
            return None
        carrier = (holder.headers or {}).get(self.header_key)
        return carrier if parented and isinstance(carrier, dict) else None

    def _handled(self, name: str) -> None:
        """The ``HandleSignal:``/``HandleUpdate:`` span, linked to the run's start; never raises."""
        try:
            self._completed_span(name, link_context_carrier=self._load_workflow_context_carrier(),
                                 kind=opentelemetry.trace.SpanKind.SERVER)
        except Exception as exc:
            _warn_once("span", f"span {name} not made ({type(exc).__name__})")

    async def handle_signal(self, input: temporalio.worker.HandleSignalInput) -> None:
        carrier = self._sender(input.headers, input.signal)
        if carrier is None:
            return await super().handle_signal(input)
        with self.within(carrier):
            self._handled(f"HandleSignal:{input.signal}")
            await temporalio.worker.WorkflowInboundInterceptor.handle_signal(self, input)

    async def handle_update_handler(self, input: temporalio.worker.HandleUpdateInput) -> Any:
        carrier = self._sender(input.headers, input.update)
        if carrier is None:
            return await super().handle_update_handler(input)
        with self.within(carrier):
            self._handled(f"HandleUpdate:{input.update}")
            return await temporalio.worker.WorkflowInboundInterceptor.handle_update_handler(self, input)


class SafeTracingInterceptor(TracingInterceptor):
    """``TracingInterceptor`` with a :class:`TypeOnlyTracer` and :class:`SafeWorkflowInterceptor` workflows."""

    workflow_class: type[TracingWorkflowInboundInterceptor] = SafeWorkflowInterceptor

    def __init__(self, tracer: opentelemetry.trace.Tracer) -> None:
        super().__init__(tracer=TypeOnlyTracer(tracer))

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[TracingWorkflowInboundInterceptor]:
        super().workflow_interceptor_class(input)  # registers the extern that makes the spans
        return self.workflow_class

    def _completed_workflow_span(self, params: Any) -> Carrier | None:
        """Upstream's (the extern workflow spans are made by), except that :data:`ALWAYS_MADE` spans are
        made without a parent too. Called only when not replaying; its errors are caught by the caller."""
        if getattr(params, "parent_missing", False) and getattr(params, "name", None) in ALWAYS_MADE:
            try:
                params = dataclasses.replace(params, parent_missing=False)
            except Exception as exc:  # a temporalio whose parameters changed: upstream's behaviour
                _warn_once("parentless", f"span {params.name} not made without a caller's trace ({type(exc).__name__})")
        return super()._completed_workflow_span(params)

    def _context_from_headers(self, headers: Mapping[str, Any]) -> Any:
        """An activity's parent context; none when its header is malformed (the activity still runs)."""
        try:
            return super()._context_from_headers(headers)
        except Exception:
            _warn_once("header", f"a malformed {self.header_key!r} header (activity) was ignored")
            return None


class DecisionTracingInterceptor(SafeTracingInterceptor):
    """:class:`SafeTracingInterceptor` whose workflow side is :class:`DecisionWorkflowInterceptor`."""

    workflow_class = DecisionWorkflowInterceptor


def interceptor(tracer: opentelemetry.trace.Tracer) -> TracingInterceptor:
    """The interceptor for a client: decision tracing when this temporalio has what it needs, else
    :class:`SafeTracingInterceptor` (decisions only linked, as upstream does) and one warning."""
    if not parentless_spans_supported():
        _warn_once("parentless", "this temporalio cannot make workflow spans without a caller's trace: hitl.pause and "
                   "hitl.decision spans are made only for runs a traced process started or decided")
    missing = missing_internals()
    if not missing:
        return DecisionTracingInterceptor(tracer)
    _warn_once("internals", "this temporalio lacks " + ", ".join(missing) + ": decisions are linked to their "
               "sender's trace, not parented on it")
    return SafeTracingInterceptor(tracer)


def current() -> DecisionWorkflowInterceptor | None:
    """The run's decision tracing interceptor, when there is one (workflow code); never raises."""
    try:
        found = TracingWorkflowInboundInterceptor._from_context()
    except Exception:
        return None
    return found if isinstance(found, DecisionWorkflowInterceptor) else None
