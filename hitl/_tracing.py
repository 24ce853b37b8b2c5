"""Temporal's tracing interceptor, with decisions traced in their sender's trace.

``TracingInterceptor`` parents every workflow span on the trace that *started* the run and only
links an update's or signal's sender. A decision comes days later from someone else (an HTTP
request to ``hitl serve``): its handler, its ``hitl.decision`` span and the tool call it lets run
belong in that request's trace. Only headers already in history are read and nothing is written
to it, so replays are unchanged (workflow spans are made only when not replaying, as upstream).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import opentelemetry.trace
import temporalio.worker
from temporalio.contrib.opentelemetry import TracingInterceptor, TracingWorkflowInboundInterceptor
from temporalio.contrib.opentelemetry._context import attached_context

from hitl.telemetry import DECISION_HANDLERS

Carrier = dict[str, str]


class _Holder:
    """Receives the carrier of a span just made (``_completed_span``'s ``add_to_outbound_model``)."""

    headers: Mapping[str, Any] | None = None


class DecisionWorkflowInterceptor(TracingWorkflowInboundInterceptor):
    """Runs decision handlers in the sender's trace; gives workflow code spans and contexts to carry."""

    def _sender(self, headers: Mapping[str, Any], name: str) -> Carrier | None:
        payload = headers.get(self.header_key) if name in DECISION_HANDLERS else None
        return self.payload_converter.from_payloads([payload])[0] if payload else None

    @contextmanager
    def within(self, carrier: Carrier | None) -> Iterator[None]:
        """Make ``carrier``'s span the parent of what the workflow starts meanwhile (a tool's activity)."""
        if not carrier:
            yield
            return
        with attached_context(self._set_on_context(self.text_map_propagator.extract(carrier))):
            yield

    def span(self, name: str, attributes: Mapping[str, str | int]) -> Carrier | None:
        """A completed span under the current one; its carrier (None when replaying or untraced)."""
        holder = _Holder()
        self._completed_span(name, additional_attributes=dict(attributes), add_to_outbound_model=holder)
        return (holder.headers or {}).get(self.header_key)

    async def handle_signal(self, input: temporalio.worker.HandleSignalInput) -> None:
        carrier = self._sender(input.headers, input.signal)
        if carrier is None:
            return await super().handle_signal(input)
        with self.within(carrier):
            self._completed_span(f"HandleSignal:{input.signal}", link_context_carrier=self._load_workflow_context_carrier(),
                                 kind=opentelemetry.trace.SpanKind.SERVER)
            await temporalio.worker.WorkflowInboundInterceptor.handle_signal(self, input)

    async def handle_update_handler(self, input: temporalio.worker.HandleUpdateInput) -> Any:
        carrier = self._sender(input.headers, input.update)
        if carrier is None:
            return await super().handle_update_handler(input)
        with self.within(carrier):
            self._completed_span(f"HandleUpdate:{input.update}", link_context_carrier=self._load_workflow_context_carrier(),
                                 kind=opentelemetry.trace.SpanKind.SERVER)
            return await temporalio.worker.WorkflowInboundInterceptor.handle_update_handler(self, input)


class DecisionTracingInterceptor(TracingInterceptor):
    """``TracingInterceptor`` whose workflow side is :class:`DecisionWorkflowInterceptor`."""

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[TracingWorkflowInboundInterceptor]:
        super().workflow_interceptor_class(input)  # registers the extern that makes the spans
        return DecisionWorkflowInterceptor


def current() -> DecisionWorkflowInterceptor | None:
    """The run's tracing interceptor, when tracing is on (workflow code)."""
    found = TracingWorkflowInboundInterceptor._from_context()
    return found if isinstance(found, DecisionWorkflowInterceptor) else None
