"""OpenTelemetry tracing, configured only by the standard ``OTEL_*`` variables,
and the spans the service makes (docs/contract.md, section 6).

Call ``configure_tracing`` in each worker after fork (gunicorn's ``post_fork``
does it; the batch processor's export thread does not survive a fork) and
``shutdown_tracing`` before the worker exits, so finished spans are exported.

The server span of each request and the client span of each statement are
made here, not by OpenTelemetry's framework and database instrumentations:
the contract needs a handful of attributes, and those libraries spend more
time per request than a simple endpoint takes (docs/performance.md in the
kit measures it).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar

from opentelemetry import context, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from .config import PACKAGE, Settings
from .logging import get_logger
from .semconv import method_label
from .spans import Provider, Tracer

Carrier = TypeVar("Carrier")

_provider: Provider | None = None
# A proxy until configure_tracing installs the provider, then the runtime's own.
_tracer: trace.Tracer | Tracer = trace.get_tracer(PACKAGE)
log = get_logger(f"{PACKAGE}.tracing")


class LogSpanExporter(SpanExporter):
    """``OTEL_TRACES_EXPORTER=console``: each span as a log line (docs/contract.md, section 5).

    The SDK's ConsoleSpanExporter prints its own JSON, without the keys every
    line of the service has, and spells ids as ``0x...``, unlike the log lines.
    """

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            log.info("span", span=_as_dict(span))
        return SpanExportResult.SUCCESS


def _as_dict(span: ReadableSpan) -> dict[str, Any]:
    span_context, parent = span.get_span_context(), span.parent
    start, end = span.start_time or 0, span.end_time or 0
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(span_context.trace_id, "032x") if span_context else None,
        "span_id": format(span_context.span_id, "016x") if span_context else None,
        "parent_span_id": format(parent.span_id, "016x") if parent else None,
        "start_time": datetime.fromtimestamp(start / 1e9, UTC).isoformat().replace("+00:00", "Z"),
        "duration_ms": round((end - start) / 1e6, 3),
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": event.name, "attributes": dict(event.attributes or {})}
            for event in span.events
        ],
    }


class DeferredExporter(SpanExporter):
    """An exporter made at its first batch, in the batch processor's thread.

    The OTLP exporter's imports (protobuf, the SDK's exporter, requests) took
    83 ms of a Django worker's start (``-X importtime``), and no batch leaves
    before the worker has served. Should the exporter fail to be made, that
    is logged once and its batches are dropped, as a failed export's are.
    """

    def __init__(self, make: Callable[[], SpanExporter]) -> None:
        self._make = make
        self._exporter: SpanExporter | None = None
        self._closed = False
        self._lock = threading.Lock()

    def _made(self) -> SpanExporter | None:
        with self._lock:
            if self._closed:
                return None
            if self._exporter is None:
                try:
                    self._exporter = self._make()
                except Exception as error:
                    self._closed = True
                    log.error("span exporter not created", error=repr(error))
            return self._exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        exporter = self._made()
        return exporter.export(spans) if exporter is not None else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        exporter = self._exporter
        return exporter.force_flush(timeout_millis) if exporter is not None else True

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            exporter = self._exporter
        if exporter is not None:
            exporter.shutdown()


def _otlp_exporter(protocol: str) -> SpanExporter:
    if protocol == "grpc":  # config.py checked that the extra is there
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
            OTLPSpanExporter as GrpcSpanExporter,
        )

        exporter: SpanExporter = GrpcSpanExporter()
        return exporter
    from .otlp import OTLPSpanExporter  # the SDK's, with a faster encoder

    return OTLPSpanExporter()


def _exporter(name: str, settings: Settings) -> SpanExporter:
    if name == "console":
        return LogSpanExporter()
    return DeferredExporter(functools.partial(_otlp_exporter, settings.tracing.otlp_protocol))


def build_resource(settings: Settings) -> Resource:
    defaults = Resource.create(
        {
            "service.name": settings.service_name,
            "service.version": settings.service_version,
            "deployment.environment.name": settings.environment,
            "deployment.environment": settings.environment,
            # Called in each worker after fork, so it tells the workers apart.
            "process.pid": os.getpid(),
        }
    )
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the defaults.
    return defaults.merge(OTELResourceDetector().detect())


def configure_tracing(settings: Settings) -> Provider | None:
    """Install the tracer provider for this process; idempotent."""
    global _provider, _tracer
    if _provider is not None:
        return _provider
    if not settings.tracing.enabled:
        return None
    provider = Provider(resource=build_resource(settings))
    for name in settings.tracing.exporters:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, settings)))
    trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = Tracer(provider, PACKAGE)
    return provider


def shutdown_tracing() -> None:
    """Export what is left and stop the export threads; idempotent."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def _method_name(method: str) -> str:
    """The span name's method: non-standard methods are named "HTTP"."""
    label = method_label(method)
    return "HTTP" if label == "_OTHER" else label


class ServerSpan:
    """A request's SERVER span: started before routing, named after the route
    once it is known, and the current span until ``end``.

    ``carrier`` holds the request headers (``traceparent``), read by ``getter``.
    """

    __slots__ = ("_failed", "_token", "span")

    def __init__(
        self, method: str, path: str, scheme: str, carrier: Carrier, getter: Getter[Carrier]
    ) -> None:
        parent = propagate.extract(carrier, getter=getter)
        self.span = _tracer.start_span(
            _method_name(method),
            parent,
            kind=trace.SpanKind.SERVER,
            attributes={
                "http.request.method": method_label(method),
                "url.path": path,
                "url.scheme": scheme,
            },
        )
        self._token = context.attach(trace.set_span_in_context(self.span, parent))
        self._failed = False

    def record_exception(self, exception: BaseException) -> None:
        self.span.record_exception(exception)
        self.span.set_status(trace.StatusCode.ERROR, type(exception).__name__)
        self._failed = True

    def finish(self, method: str, route: str, status: int, error_type: str) -> None:
        """Record the outcome; the span stays current so the access line and
        the metrics' exemplar that follow point at it."""
        span = self.span
        if route:
            span.update_name(f"{_method_name(method)} {route}")
            span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_attribute("error.type", error_type or str(status))
            if not self._failed:
                span.set_status(trace.StatusCode.ERROR)

    def end(self) -> None:
        self.span.end()
        context.detach(self._token)


def database_span(
    system: str, namespace: str, host: str | None, port: int | None, statement: str
) -> trace.Span:
    """A started CLIENT span for one statement, child of the current span.

    Statements outside a trace (readiness checks, migrations) get no span:
    probes are not traced, and a span without its request explains nothing.
    """
    if not trace.get_current_span().get_span_context().is_valid:
        return trace.INVALID_SPAN
    name, attributes = _statement(system, namespace, host, port, statement)
    return _tracer.start_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes)


# A service runs the same few statements over and over: their span's name and
# attributes are worked out once (0.5 µs of the 7.5 each statement's span took, timeit).
@functools.lru_cache(maxsize=1024)
def _statement(
    system: str, namespace: str, host: str | None, port: int | None, statement: str
) -> tuple[str, Mapping[str, str | int]]:
    operation = statement.split(None, 1)[0].upper() if statement else ""
    attributes: dict[str, str | int] = {
        "db.system.name": system,
        "db.operation.name": operation,
        "db.query.text": statement,
    }
    if namespace:
        attributes["db.namespace"] = namespace
    if host:
        attributes["server.address"] = host
        if port:
            attributes["server.port"] = port
    return f"{operation} {namespace}".strip() or system, MappingProxyType(attributes)


def end_database_span(span: trace.Span, error: BaseException | None = None) -> None:
    if error is not None:
        span.record_exception(error)
        span.set_status(trace.StatusCode.ERROR, type(error).__name__)
    span.end()


def client_span(method: str, address: str, port: int, url: str) -> trace.Span:
    """A started CLIENT span for one attempt of an outbound HTTP call, child of the
    current span (docs/contract.md, section 12); ``method`` is already a label
    (a standard method or ``_OTHER``), ``url`` has no user information or query."""
    attributes: dict[str, str | int] = {
        "http.request.method": method,
        "server.address": address,
        "url.full": url,
    }
    if port:
        attributes["server.port"] = port
    return _tracer.start_span(
        "HTTP" if method == "_OTHER" else method,
        kind=trace.SpanKind.CLIENT,
        attributes=attributes,
    )
