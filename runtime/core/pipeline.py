"""The request pipeline every framework runs (docs/contract.md, sections 3 to 9).

One ``Exchange`` per request, from its arrival to its access line: the
request id, the log context, the server span, load shedding, the in-flight
gauge, the duration histogram, the access line and the ``error_type`` of a
5xx. The server layers (``asgi.py``, ``wsgi.py``) begin and finish it; the
framework's own code only tells it the route (``Exchange.route``) and, by
building its error bodies with ``error_body``, which error it answered.

Probes and the scrape (``EXEMPT_PATHS``) get a request id and nothing else:
no span, no metrics, no access line, no shedding, and what they log carries
no request id, as it is news of the process, not of a request.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Sequence
from contextvars import ContextVar, Token
from typing import Any, TypeVar

import structlog
from opentelemetry.propagators.textmap import Getter

from .config import PACKAGE, Settings
from .error_tracking import report_exception
from .errors import RETRY_AFTER, code_for, message_for
from .logging import AccessLog, get_logger, span_ids
from .metrics import active_requests, observe_request, publish_in_flight_limit
from .request_id import request_id
from .tracing import ServerSpan

EXEMPT_PATHS = frozenset({"/healthz", "/ready", "/metrics"})

Carrier = TypeVar("Carrier")

access_log = AccessLog(f"{PACKAGE}.access")
log = get_logger(__name__)
_current: ContextVar[Exchange | None] = ContextVar("exchange", default=None)


def current() -> Exchange | None:
    """The request being served in this context, if any."""
    return _current.get()


class Slots:
    """At most ``limit`` requests at once; the rest are refused, never queued.

    A lock rather than a counter: threaded workers admit requests from many
    threads, and an uncontended lock costs an event loop next to nothing.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.taken >= self.limit:
                return False
            self.taken += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.taken -= 1


class Pipeline:
    """The pipeline of one worker's application."""

    def __init__(self, settings: Settings) -> None:
        self.slots = Slots(settings.max_in_flight)
        publish_in_flight_limit(settings.max_in_flight)

    def begin(
        self,
        method: str,
        path: str,
        scheme: str,
        *,
        incoming_id: str | None,
        hosts: Sequence[str],
        host_required: bool,
        carrier: Carrier,
        getter: Getter[Carrier],
    ) -> Exchange:
        """A request has arrived: ``incoming_id`` is its ``X-Request-ID`` header (None
        when absent), ``hosts`` its ``Host`` lines (one is required of HTTP/1.1
        requests, where the server does not check it itself), and ``carrier`` holds
        its headers (``traceparent``). The server layer answers ``Exchange.refusal``
        if it has one."""
        exchange = Exchange(self, method, path, request_id(incoming_id))
        structlog.contextvars.clear_contextvars()
        observed = path not in EXEMPT_PATHS
        if observed:
            structlog.contextvars.bind_contextvars(request_id=exchange.request_id)
            exchange.observe(scheme, carrier, getter)
        if not valid_host(hosts, host_required):
            exchange.refusal = (400, "bad_request", {})
        elif observed and not self.slots.take():
            exchange.refusal = (503, "overloaded", {"Retry-After": RETRY_AFTER})
        elif observed:
            exchange.admitted()
        return exchange


# RFC 9112 section 3.2 and RFC 3986 section 3.2.2: uri-host [ ":" port ], where
# uri-host is an IP literal in brackets or a reg-name (IPv4 addresses are reg-names).
_HOST = re.compile(
    r"(?:\[[0-9A-Za-z:._~!$&'()*+,;=-]+\]|(?:%[0-9A-Fa-f]{2}|[0-9A-Za-z._~!$&'()*+,;=-])*)"
    r"(?::[0-9]*)?"
)


def valid_host(hosts: Sequence[str], required: bool) -> bool:
    """One valid ``Host``, or none where none is required (RFC 9112, section 3.2)."""
    if not hosts:
        return not required
    return len(hosts) == 1 and _valid_host_value(hosts[0])


# A service hears a handful of Host values: each is matched once (0.3 µs
# against 1.0 for the expression, timeit); made-up ones only evict each other.
@functools.lru_cache(maxsize=1024)
def _valid_host_value(host: str) -> bool:
    return _HOST.fullmatch(host) is not None


class Exchange:
    """One request and what it leaves behind."""

    __slots__ = (
        "_active",
        "_started",
        "_token",
        "error_type",
        "method",
        "path",
        "pipeline",
        "refusal",
        "request_id",
        "route",
        "span",
        "status",
    )

    def __init__(self, pipeline: Pipeline, method: str, path: str, request_id: str) -> None:
        self.pipeline = pipeline
        self.method = method
        self.path = path
        self.request_id = request_id
        self.route = ""  # the route template, once the framework has matched one
        self.error_type = ""  # the error code of a 5xx the service answered itself
        # The response's status, for an adapter whose hooks see the response
        # before the request ends (Flask's): a 500 until there is a response.
        self.status = 500
        self.span: ServerSpan | None = None
        # What the server layer answers instead of the application: a bad Host
        # (400), or no room (503 overloaded).
        self.refusal: tuple[int, str, dict[str, str]] | None = None
        self._active: Any = None
        self._started = 0.0
        self._token: Token[Exchange | None] | None = _current.set(self)

    def observe(self, scheme: str, carrier: Carrier, getter: Getter[Carrier]) -> None:
        self._started = time.perf_counter()
        self.span = ServerSpan(self.method, self.path, scheme, carrier, getter)

    def admitted(self) -> None:
        """The request holds a slot (``Pipeline.slots``) until it finishes."""
        self._active = active_requests(self.method)
        self._active.inc()

    def answered_error(self, code: str, status: int) -> None:
        """The service answered ``status`` with the error ``code`` (``error_body``)."""
        if status >= 500:
            self.error_type = code

    def fail(self, exception: BaseException) -> None:
        """An exception nothing handled: one error line with its traceback, on the span
        too, and a report to the error tracker when there is one."""
        log.error(
            "unhandled exception", exc_info=exception, http_method=self.method, http_path=self.path
        )
        if self.span is not None:
            self.span.record_exception(exception)
        report_exception(exception)

    def finish(self, status: int) -> None:
        """The response is made: record it, then forget the request in this context.

        Only the first call counts (a response that failed as it was sent is
        finished again, by the server layer's last resort).
        """
        token, self._token = self._token, None
        if token is None:
            return
        try:
            if self.span is not None:
                self._record(status)
        finally:
            try:
                _current.reset(token)
            except ValueError:  # finished in another context than it began in
                _current.set(None)
            # What the server writes next (closing the connection, reading the
            # next request) belongs to no request.
            structlog.contextvars.clear_contextvars()

    def _record(self, status: int) -> None:
        assert self.span is not None
        seconds = time.perf_counter() - self._started
        if self._active is not None:
            self._active.dec()
            self.pipeline.slots.give_back()
        error_type = (self.error_type or "internal_error") if status >= 500 else ""
        try:
            self.span.finish(self.method, self.route, status, error_type)
            context = self.span.span.get_span_context()
            ids = span_ids(context)
            sampled = ids[0] if ids and context.trace_flags.sampled else None
            observe_request(self.method, self.route, status, error_type, seconds, sampled)
            access_log.write(
                "request",
                {
                    "http_method": self.method,
                    "http_route": self.route,
                    "http_path": self.path,
                    "http_status": status,
                    "duration_ms": round(seconds * 1000, 3),
                },
                ids,
            )
        finally:
            self.span.end()


def error_body(
    status: int, code: str | None = None, details: list[Any] | None = None
) -> dict[str, Any]:
    """The JSON body of an error response; ``code`` defaults to the status's.

    The one way to build an error: it names the request and tells the request's
    exchange which error it answered, for the metric's ``error_type``."""
    code = code or code_for(status)
    exchange = _current.get()
    if exchange is not None:
        exchange.answered_error(code, status)
    answer: dict[str, Any] = {
        "error": code,
        "message": message_for(code, status),
        "request_id": exchange.request_id if exchange is not None else None,
    }
    if details is not None:
        answer["details"] = details
    return answer
