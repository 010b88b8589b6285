"""OpenTelemetry tracing, configured only by the standard ``OTEL_*`` variables.

Call ``configure_tracing`` in each worker after fork (gunicorn's ``post_fork``
does it; the batch processor's export thread does not survive a fork) and
``shutdown_tracing`` before the worker exits, so finished spans are exported.
"""

from __future__ import annotations

import os
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from .config import ConfigError, Settings

# Stable HTTP semantic conventions (http.request.method, http.route, ...) in
# the instrumentations; they read this once, on first use.
os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")

_provider: TracerProvider | None = None


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def _one_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


def _exporters() -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    for name in _env("OTEL_TRACES_EXPORTER", "otlp").lower().split(","):
        name = name.strip()
        if name == "none":
            continue
        if name == "console":
            exporters.append(ConsoleSpanExporter(out=sys.stdout, formatter=_one_line))
        elif name == "otlp":
            exporters.append(_otlp_exporter())
        else:
            raise ConfigError("OTEL_TRACES_EXPORTER", name, "otlp, console or none")
    return exporters


def _otlp_exporter() -> SpanExporter:
    protocol = _env(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", _env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    )
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter as GrpcSpanExporter,
            )
        except ImportError:
            raise ConfigError(
                "OTEL_EXPORTER_OTLP_PROTOCOL", protocol, "http/protobuf, or install the grpc extra"
            ) from None
        exporter: SpanExporter = GrpcSpanExporter()
        return exporter
    raise ConfigError("OTEL_EXPORTER_OTLP_PROTOCOL", protocol, "http/protobuf or grpc")


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
    if _env("OTEL_SDK_DISABLED").lower() == "true":
        return None
    provider = TracerProvider(resource=build_resource(settings))
    for exporter in _exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def shutdown_tracing() -> None:
    """Export what is left and stop the export threads; idempotent."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None
