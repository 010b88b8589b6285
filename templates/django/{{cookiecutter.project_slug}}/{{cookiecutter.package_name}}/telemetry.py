"""OpenTelemetry instrumentation of Django and of its database clients, and the
route templates that name requests in spans, metrics and access lines alike.

The tracer provider itself is created per worker, after fork (tracing.py,
called by gunicorn.conf.py's ``post_fork``).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.trace import Span

from .metrics import method_label

_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def route_template(match: ResolverMatch | None) -> str:
    """``api/items/<int:item_id>`` as the contract writes it, ``/api/items/{item_id}``;
    empty when no route matched."""
    if match is None:
        return ""
    return "/" + _CONVERTER.sub(r"{\1}", match.route)


def _name_server_span(span: Span, request: HttpRequest, response: HttpResponse) -> None:
    template = route_template(request.resolver_match)
    if template and span.is_recording():
        method = method_label(request.method or "")
        span.update_name(f"{'HTTP' if method == '_OTHER' else method} {template}")
        span.set_attribute("http.route", template)


def instrument() -> None:
    """Trace requests and database statements (SQLite and PostgreSQL); idempotent."""
    middleware = list(settings.MIDDLEWARE)
    # Inside the request id and the probes: every span has a request id, and
    # probes are neither traced nor subject to host validation (middleware.py).
    position = middleware.index("{{ cookiecutter.package_name }}.middleware.ProbeMiddleware") + 1
    django = DjangoInstrumentor()
    if not django.is_instrumented_by_opentelemetry:
        django.instrument(middleware_position=position, response_hook=_name_server_span)
    for client in (SQLite3Instrumentor(), PsycopgInstrumentor()):
        if not client.is_instrumented_by_opentelemetry:
            client.instrument()
