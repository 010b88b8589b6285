"""Per-request telemetry and load shedding, as Flask hooks around each request.

The server span opens in ``before_request`` and ends in ``teardown_request``,
after the access line and the histogram's exemplar, which carry its trace id.

Route templates are written the OpenAPI way in every signal, whatever Flask's
rule syntax: ``/api/items/<int:item_id>`` is ``/api/items/{item_id}``
(contract, section 3). ``route_template`` is the one place that converts.
"""

from __future__ import annotations

import functools
import re
import threading
import time

import structlog
from flask import Flask, Response, g, request

from .access import record_request
from .config import Settings
from .errors import error_response
from .http_errors import RETRY_AFTER
from .metrics import active_requests
from .tracing import ENVIRON, ServerSpan

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


class RequestTelemetry:
    """Load shedding, the in-flight gauge, the duration histogram and the access line."""

    def __init__(self, settings: Settings) -> None:
        # Threaded workers keep threads free beyond this many requests, to
        # answer probes and refuse the excess at once (contract, section 9).
        self._slots = threading.BoundedSemaphore(settings.max_in_flight)

    def init_app(self, app: Flask) -> None:
        app.before_request(self._begin)
        app.after_request(self._remember_status)
        app.teardown_request(self._finish)

    def _begin(self) -> Response | None:
        if request.path in EXEMPT_PATHS:
            # What a probe logs (a readiness change) is news of the process,
            # not of this request: like the probe, it stays out of request logs.
            structlog.contextvars.unbind_contextvars("request_id")
            return None
        g.request_started = time.perf_counter()
        g.server_span = ServerSpan(
            request.method, request.path, request.scheme, request.environ, ENVIRON
        )
        if not self._slots.acquire(blocking=False):
            return error_response(503, "overloaded", headers={"Retry-After": RETRY_AFTER})
        g.holds_slot = True
        active_requests(request.method).inc()
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
            active_requests(request.method).dec()
        status: int = g.get("http_status", 500)
        error_type = g.get("error_type", "internal_error") if status >= 500 else ""
        route = current_route()
        span: ServerSpan = g.pop("server_span")
        try:
            span.finish(request.method, route, status, error_type)
            record_request(request.method, route, request.path, status, error_type, seconds)
        finally:
            span.end()
