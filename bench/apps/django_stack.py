"""The usual Django observability stack: django-prometheus, OpenTelemetry's
Django and database instrumentations exporting over OTLP, and a JSON access
log written by a middleware.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from bench_django import build
from django.urls import include, path
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

provider = TracerProvider(resource=Resource.create({"service.name": "stack"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)
structlog.configure(
    processors=[
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.JSONRenderer(),
    ]
)
access = structlog.get_logger("access")


class AccessLog:
    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        started = time.perf_counter()
        response = self.get_response(request)
        access.info(
            "request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        return response


def instrument() -> None:
    DjangoInstrumentor().instrument()
    PsycopgInstrumentor().instrument(skip_dep_check=True)
    SQLite3Instrumentor().instrument()


app = build(
    configured=instrument,
    apps=["django_prometheus"],
    middleware=[
        "django_prometheus.middleware.PrometheusBeforeMiddleware",
        f"{__name__}.AccessLog",
        "django_prometheus.middleware.PrometheusAfterMiddleware",
    ],
    urls=[path("", include("django_prometheus.urls"))],
)
