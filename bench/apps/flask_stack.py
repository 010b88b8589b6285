"""The usual Flask observability stack: prometheus-flask-exporter, OpenTelemetry's
Flask and SQLAlchemy instrumentations exporting over OTLP, and a JSON access
log written in an after-request hook.
"""

from __future__ import annotations

import time

import structlog
from flask import Response, g, request
from flask_bare import app, engine
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_flask_exporter import PrometheusMetrics

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

PrometheusMetrics(app)
FlaskInstrumentor().instrument_app(app)
SQLAlchemyInstrumentor().instrument(engine=engine, skip_dep_check=True)


@app.before_request
def start_timer() -> None:
    g.started = time.perf_counter()


@app.after_request
def access_log(response: Response) -> Response:
    access.info(
        "request",
        method=request.method,
        path=request.path,
        status=response.status_code,
        duration_ms=round((time.perf_counter() - g.started) * 1000, 3),
    )
    return response
