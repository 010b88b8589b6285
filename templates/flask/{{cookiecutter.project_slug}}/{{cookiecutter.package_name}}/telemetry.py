"""Per-request telemetry and load shedding, as Flask hooks around each request.

OpenTelemetry's Flask instrumentation opens the server span in its
``before_request`` hook and ends it in its ``teardown_request`` hook. The
hooks here are registered after it, so they run inside that span (Flask runs
teardown functions in reverse order): the access line and the histogram's
exemplar carry its trace id.

Route templates are written the OpenAPI way in every signal, whatever Flask's
rule syntax: ``/api/items/<int:item_id>`` is ``/api/items/{item_id}``
(contract, section 3). ``route_template`` is the one place that converts.
"""

from __future__ import annotations

import functools
import re
import threading
import time

from flask import Flask, Response, g, request
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE

from .access import record_request
from .config import Settings
from .errors import error_response
from .http_errors import RETRY_AFTER
from .metrics import http_server_active_requests, method_label

# Probes and the scrape are not requests of the service: no span, no metrics,
# no access line, no shedding (contract, sections 3 and 7).
EXEMPT_PATHS = frozenset({"/healthz", "/ready", "/metrics"})

# A rule's variable, with or without converter and arguments: <int(min=1):id>.
_VARIABLE = re.compile(r"<(?:[^<>:]*:)?([^<>:]+)>")


@functools.cache
def route_template(rule: str) -> str:
    return _VARIABLE.sub(r"{\1}", rule)


def current_route() -> str:
    """The matched route's template; empty when no route matched."""
    rule = request.url_rule
    return route_template(rule.rule) if rule is not None else ""


def _name_span(span: trace.Span, status: str, headers: list[tuple[str, str]]) -> None:
    """The instrumentation names the span after Flask's rule, or after the raw
    path when no route matched; the contract wants the template or nothing."""
    if not span.is_recording():
        return
    # The semantic conventions name spans of non-standard methods "HTTP".
    method = request.method if method_label(request.method) != "_OTHER" else "HTTP"
    route = current_route()
    span.update_name(f"{method} {route}" if route else method)
    if route:
        span.set_attribute(HTTP_ROUTE, route)


def _excluded_urls() -> str:
    # The instrumentation matches these regular expressions against the full URL.
    return ",".join(rf"^[^:/?#]+://[^/?#]*{re.escape(path)}(\?.*)?$" for path in EXEMPT_PATHS)


class RequestTelemetry:
    """Load shedding, the in-flight gauge, the duration histogram and the access line."""

    def __init__(self, settings: Settings) -> None:
        # Threaded workers keep threads free beyond this many requests, to
        # answer probes and refuse the excess at once (contract, section 9).
        self._slots = threading.BoundedSemaphore(settings.max_in_flight)

    def init_app(self, app: Flask) -> None:
        FlaskInstrumentor.instrument_app(  # type: ignore[no-untyped-call]
            app,
            excluded_urls=_excluded_urls(),
            response_hook=_name_span,
            # It would tag SQL statements with comments; spans link them already.
            enable_commenter=False,
        )
        app.before_request(self._begin)
        app.after_request(self._remember_status)
        app.teardown_request(self._finish)

    def _begin(self) -> Response | None:
        if request.path in EXEMPT_PATHS:
            return None
        g.request_started = time.perf_counter()
        if not self._slots.acquire(blocking=False):
            return error_response(503, "overloaded", headers={"Retry-After": RETRY_AFTER})
        g.holds_slot = True
        http_server_active_requests.labels(method_label(request.method)).inc()
        return None

    def _remember_status(self, response: Response) -> Response:
        g.http_status = response.status_code
        return response

    def _finish(self, _: BaseException | None) -> None:
        started: float | None = g.pop("request_started", None)
        if started is None:
            return
        seconds = time.perf_counter() - started
        if g.pop("holds_slot", False):
            self._slots.release()
            http_server_active_requests.labels(method_label(request.method)).dec()
        status: int = g.get("http_status", 500)
        error_type = g.get("error_type", "internal_error") if status >= 500 else ""
        record_request(request.method, current_route(), request.path, status, error_type, seconds)
