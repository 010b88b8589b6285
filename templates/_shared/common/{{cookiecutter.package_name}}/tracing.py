"""OpenTelemetry tracing, configured only by the standard ``OTEL_*`` variables.

Call ``configure_tracing`` in each worker after fork (gunicorn's ``post_fork``
does it; the batch processor's export thread does not survive a fork) and
``shutdown_tracing`` before the worker exits, so finished spans are exported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from .config import Settings
from .logging import get_logger

# Stable HTTP semantic conventions (http.request.method, http.route, ...) in
# the instrumentations; they read this once, on first use.
os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")

_provider: TracerProvider | None = None
log = get_logger(__name__)


class LogSpanExporter(SpanExporter):
    """``OTEL_TRACES_EXPORTER=console``: each span as a log line (contract, section 5).

    The SDK's ConsoleSpanExporter prints its own JSON, without the keys every
    line of the service has, and spells ids as ``0x...``, unlike the log lines.
    """

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            log.info("span", span=_as_dict(span))
        return SpanExportResult.SUCCESS


def _as_dict(span: ReadableSpan) -> dict[str, Any]:
    context, parent = span.get_span_context(), span.parent
    start, end = span.start_time or 0, span.end_time or 0
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(context.trace_id, "032x") if context else None,
        "span_id": format(context.span_id, "016x") if context else None,
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


def _exporter(name: str, settings: Settings) -> SpanExporter:
    if name == "console":
        return LogSpanExporter()
    if settings.tracing.otlp_protocol == "grpc":  # config.py checked that the extra is there
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
            OTLPSpanExporter as GrpcSpanExporter,
        )

        exporter: SpanExporter = GrpcSpanExporter()
        return exporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


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


def configure_tracing(settings: Settings) -> TracerProvider | None:
    """Install the tracer provider for this process; idempotent."""
    global _provider
    if _provider is not None:
        return _provider
    if not settings.tracing.enabled:
        return None
    provider = TracerProvider(resource=build_resource(settings))
    for name in settings.tracing.exporters:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, settings)))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def shutdown_tracing() -> None:
    """Export what is left and stop the export threads; idempotent."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None
