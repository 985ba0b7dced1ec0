"""Traces: an OpenTelemetry span per invocation, and the trace carried across every hop.

Active when OpenTelemetry is installed (the ``otel`` extra) and a tracer provider is set
(in code, or by ``opentelemetry-instrument python -m eventrouter run``) or given
(``Router(tracing=provider)``), unless ``Router(tracing=False)``; otherwise nothing here
runs and OpenTelemetry is not imported.

A trace travels between hops as one W3C ``traceparent`` string: read from HTTP
(``traceparent`` or X-Ray's ``X-Amzn-Trace-Id``), stored with each event of the durable queue,
in Kafka record headers (``traceparent``) and SQS messages (``AWSTraceHeader``, X-Ray's
form), given to process environments as ``_X_AMZN_TRACE_ID`` and to Runtime API clients as
``Lambda-Runtime-Trace-Id``. An invocation of one event continues its trace (the event's
context is the span's parent); a batch invocation starts its own and links its records'.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

#: The tracer of this process while one is active (:func:`activate`), else ``None``.
TRACER: Tracer | None = None


def activate(router: Any) -> Tracer | None:
    """Turn tracing on for this process if OpenTelemetry is installed and configured (and
    the router wants it), else off: the last router started in a process decides."""
    global TRACER
    TRACER = None
    if router.tracing is False:
        return None
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = trace.get_tracer_provider() if router.tracing is True else router.tracing
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None  # installed but not configured: spans would go nowhere
    TRACER = Tracer(provider)
    return TRACER


def current_trace() -> str | None:
    """The ``traceparent`` of the current span (inside an invocation, a delivery...)."""
    tracer = TRACER
    return None if tracer is None else tracer.current()


def current_xray() -> str | None:
    """The current span's trace in X-Ray's form (SQS's ``AWSTraceHeader``)."""
    tracer = TRACER
    traceparent = None if tracer is None else tracer.current()
    return None if tracer is None or traceparent is None else tracer.to_xray(traceparent)


def sqs_trace(message: Mapping[str, Any]) -> str | None:
    """The trace an SQS message carries (``AWSTraceHeader``, X-Ray's form), as a
    ``traceparent``; ``None`` without one or without tracing."""
    tracer = TRACER
    if tracer is None:
        return None
    header = message.get("Attributes", {}).get("AWSTraceHeader")
    return tracer.from_xray(header) if header else None


class Tracer:
    """OpenTelemetry's tracer and propagators (W3C trace context, X-Ray)."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry import context, trace
        from opentelemetry.propagators.aws import AwsXRayPropagator
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self.trace = trace
        self.context = context
        self.tracer = provider.get_tracer("eventrouter")
        self.w3c = TraceContextTextMapPropagator()
        self.xray = AwsXRayPropagator()

    # -- the carrier -------------------------------------------------------------------------

    def current(self) -> str | None:
        span_context = self.trace.get_current_span().get_span_context()
        return traceparent_of(span_context) if span_context.is_valid else None

    def _context(self, traceparent: str) -> Any:
        """An OpenTelemetry context whose current span is ``traceparent``'s (remote)."""
        parts = traceparent.split("-")
        trace = self.trace
        if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16 or len(parts[3]) != 2:
            return self.w3c.extract({"traceparent": traceparent})  # its own errors
        try:
            span_context = trace.SpanContext(
                int(parts[1], 16),
                int(parts[2], 16),
                is_remote=True,
                trace_flags=trace.TraceFlags(int(parts[3], 16)),
            )
        except ValueError:
            return self.w3c.extract({})
        return trace.set_span_in_context(trace.NonRecordingSpan(span_context))

    def from_headers(self, get: Callable[[str], str | None]) -> str | None:
        """The trace of an HTTP request: ``traceparent`` first, else ``X-Amzn-Trace-Id``
        (header names in lower case)."""
        traceparent = get("traceparent")
        if traceparent is not None and self._valid(self._context(traceparent)):
            return traceparent
        xray = get("x-amzn-trace-id")
        if xray is None:
            return None
        return self.from_xray(xray)

    def from_xray(self, header: str) -> str | None:
        """X-Ray's ``Root=1-...;Parent=...;Sampled=1`` as a ``traceparent``."""
        context = self.xray.extract({"X-Amzn-Trace-Id": header})
        if not self._valid(context):
            return None
        carrier: dict[str, str] = {}
        self.w3c.inject(carrier, context)
        return carrier.get("traceparent")

    def to_xray(self, traceparent: str) -> str | None:
        span_context = self.trace.get_current_span(self._context(traceparent)).get_span_context()
        return xray_of(span_context) if span_context.is_valid else None

    def _valid(self, context: Any) -> bool:
        return bool(self.trace.get_current_span(context).get_span_context().is_valid)

    # -- spans -------------------------------------------------------------------------------

    def start(
        self,
        name: str,
        attributes: Mapping[str, Any],
        *,
        kind: str = "SERVER",
        parent: str | None = None,
        links: Sequence[str | None] = (),
    ) -> tuple[Any, Any]:
        """Start a span and make it current: ``(span, token)`` for :meth:`finish`. Without
        ``parent`` the current span is the parent (``ctx.invoke`` inside an invocation)."""
        trace = self.trace
        context = self._context(parent) if parent is not None else None
        span_links = []
        for link in links:
            if link is not None:
                span_context = trace.get_current_span(self._context(link)).get_span_context()
                if span_context.is_valid:
                    span_links.append(trace.Link(span_context))
        span = self.tracer.start_span(
            name,
            context=context,
            kind=getattr(trace.SpanKind, kind),
            attributes=dict(attributes),
            links=span_links,
        )
        token = self.context.attach(trace.set_span_in_context(span, context))
        return span, token

    def finish(self, span: Any, token: Any, error: Mapping[str, Any] | None = None) -> None:
        self.context.detach(token)
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            span.set_attribute("error.type", str(error.get("errorType")))
            span.set_status(Status(StatusCode.ERROR, str(error.get("errorMessage"))[:500]))
        span.end()

    @contextlib.contextmanager
    def span(
        self, name: str, attributes: Mapping[str, Any], kind: str, parent: str | None
    ) -> Iterator[Any]:
        span, token = self.start(name, attributes, kind=kind, parent=parent)
        try:
            yield span
        except BaseException as exc:
            self.finish(span, token, {"errorType": type(exc).__name__, "errorMessage": str(exc)})
            raise
        self.finish(span, token)


def traceparent_of(span_context: Any) -> str:
    """W3C's ``traceparent`` of a span context (formatted here: the propagator's carrier
    round trip costs microseconds per invocation)."""
    context = span_context
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def xray_of(span_context: Any) -> str:
    """X-Ray's trace header of a span context (``Root=1-<8 hex>-<24 hex>;Parent=...``)."""
    trace_id = f"{span_context.trace_id:032x}"
    sampled = "1" if span_context.trace_flags & 1 else "0"
    return (
        f"Root=1-{trace_id[:8]}-{trace_id[8:]};Parent={span_context.span_id:016x};Sampled={sampled}"
    )


def invocation_attributes(
    name: str, memory_mb: int, arn: str, source: dict[str, Any]
) -> dict[str, Any]:
    """What every span of a function's invocations says of it (OpenTelemetry's FaaS
    conventions; ``source``: its source's trigger and messaging attributes)."""
    return {
        "faas.trigger": "other",
        "faas.name": name,
        "faas.version": "$LATEST",
        "faas.max_memory": memory_mb * 1024 * 1024,
        "cloud.resource_id": arn,
        **source,
    }


@contextlib.contextmanager
def incoming(get: Callable[[str], str | None]) -> Iterator[None]:
    """Make the trace of an incoming request (``traceparent`` or ``X-Amzn-Trace-Id``) current
    while it is handled: its invocations, and the events it queues, continue it."""
    tracer = TRACER
    with _current(tracer, tracer.from_headers(get) if tracer is not None else None):
        yield


@contextlib.contextmanager
def continuing_xray(header: str | None) -> Iterator[None]:
    """Make a trace given in X-Ray's form current (a process environment's ``ctx.invoke``)."""
    tracer = TRACER
    traceparent = tracer.from_xray(header) if tracer is not None and header else None
    with _current(tracer, traceparent):
        yield


@contextlib.contextmanager
def _current(tracer: Tracer | None, traceparent: str | None) -> Iterator[None]:
    if tracer is None or traceparent is None:
        yield
        return
    token = tracer.context.attach(tracer._context(traceparent))
    try:
        yield
    finally:
        tracer.context.detach(token)


@contextlib.contextmanager
def sending(kind: str, destination: str, parent: str | None) -> Iterator[None]:
    """A span around the delivery of a destination record, current while it is sent (the
    record's receiver continues the trace); nothing without tracing."""
    tracer = TRACER
    if tracer is None:
        yield
        return
    attributes = {"eventrouter.destination": destination, "eventrouter.record": kind}
    with tracer.span(f"{kind} {destination}", attributes, "PRODUCER", parent):
        yield
