"""The service's middleware, outermost first (settings.MIDDLEWARE):

1. ``RequestIdMiddleware``: the request id, on every response and log line.
2. ``ProbeMiddleware``: /healthz, /ready and /metrics, answered at once.
3. ``RequestMiddleware``: the server span, load shedding, metrics, the access
   line, and the answers to exceptions that are not bugs (a body too large,
   the database down).
4. ``AllowedHostsMiddleware``: requests for a host ALLOWED_HOSTS does not list
   are answered 400.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog
from django.http import HttpRequest, HttpResponse

from . import errors, probes
from .access import record_request
from .config import get_settings
from .metrics import active_requests
from .request_id import HEADER, bind_request_id
from .telemetry import route_template
from .tracing import ENVIRON, ServerSpan

GetResponse = Callable[[HttpRequest], HttpResponse]


class RequestIdMiddleware:
    """Takes the caller's ``X-Request-ID`` only when it is safe to log and echo.

    django-guid accepts either any value or only UUIDs; the contract's rule
    is neither, so this is written out.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = bind_request_id(request.headers.get(HEADER, ""))
        response = self.get_response(request)
        response[HEADER] = request_id
        if not response.streaming and not response.has_header("Content-Length"):
            # Spares gunicorn chunked encoding (CommonMiddleware would do it,
            # but only after validating the host, which probes must not need).
            response["Content-Length"] = str(len(response.content))
        return response


class ProbeMiddleware:
    """Answers the probes and the scrape before anything else runs.

    Kubelets and Prometheus address a pod by its IP, which no ALLOWED_HOSTS
    lists; and the contract keeps probes out of tracing, load shedding,
    the access log and the HTTP metrics.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.probes = probes.views()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = self.probes.get(request.path_info)
        if probe is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return errors.method_not_allowed(("GET", "HEAD"))
        # What a probe logs (a readiness change) is news of the process, not
        # of this request: like the probe itself, it stays out of request logs.
        structlog.contextvars.unbind_contextvars("request_id")
        return probe(request)


class RequestMiddleware:
    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        # gthread serves WEB_THREADS requests at once; MAX_IN_FLIGHT leaves
        # threads free to answer probes and refusals.
        self.slots = threading.BoundedSemaphore(get_settings().max_in_flight)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        method = request.method or ""
        span = ServerSpan(method, request.path, request.scheme or "http", request.META, ENVIRON)
        try:
            if not self.slots.acquire(blocking=False):
                response: HttpResponse = errors.overloaded()
            else:
                active = active_requests(method)
                active.inc()
                try:
                    response = self.get_response(request)
                finally:
                    active.dec()
                    self.slots.release()
            self._record(request, response, span, time.perf_counter() - started)
        finally:
            span.end()
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # None lets Django answer: Http404 and friends through urls.py's
        # handlers, anything else as a 500 (errors.log_unhandled_exception).
        return errors.response_for_exception(exception)

    def _record(
        self, request: HttpRequest, response: HttpResponse, span: ServerSpan, seconds: float
    ) -> None:
        method = request.method or ""
        status = response.status_code
        error_type = ""
        if status >= 500:
            error_type = getattr(response, "error_code", "internal_error")
        route = route_template(request.resolver_match)
        span.finish(method, route, status, error_type)
        record_request(method, route, request.path, status, error_type, seconds)


class AllowedHostsMiddleware:
    """Validates the Host header against ALLOWED_HOSTS before any view runs.

    Django checks it only when something asks for the host (CommonMiddleware,
    which this project does without so that probes need no host); Django turns
    the DisallowedHost raised here into its 400 answer, inside the request's
    span and access line.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.get_host()
        return self.get_response(request)
