"""The request pipeline every framework runs (docs/contract.md, sections 3 to 9).

One ``Exchange`` per request, from its arrival to its access line: the
request id, the log context, the server span, load shedding, the in-flight
gauge, the duration histogram, the access line and the ``error_type`` of a
5xx. The server layers (``asgi.py``, ``wsgi.py``) begin and finish it; the
framework's own code only tells it the route (``Exchange.route``) and, by
building its error bodies with ``errors.body``, which error it answered.

Probes and the scrape (``EXEMPT_PATHS``) get a request id and nothing else:
no span, no metrics, no access line, no shedding, and what they log carries
no request id, as it is news of the process, not of a request.
"""

from __future__ import annotations

import threading
import time
from contextvars import ContextVar, Token
from typing import Any, TypeVar

import structlog
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter

from .config import PACKAGE, Settings
from .logging import get_logger
from .metrics import active_requests, observe_request
from .request_id import request_id
from .tracing import ServerSpan

EXEMPT_PATHS = frozenset({"/healthz", "/ready", "/metrics"})

Carrier = TypeVar("Carrier")

access_log = get_logger(f"{PACKAGE}.access")
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

    def begin(
        self,
        method: str,
        path: str,
        scheme: str,
        incoming_id: str | None,
        carrier: Carrier,
        getter: Getter[Carrier],
    ) -> Exchange:
        """A request has arrived: ``incoming_id`` is its ``X-Request-ID`` header (None
        when absent), and ``carrier`` holds its headers (``traceparent``)."""
        exchange = Exchange(self, method, path, request_id(incoming_id))
        structlog.contextvars.clear_contextvars()
        if path not in EXEMPT_PATHS:
            structlog.contextvars.bind_contextvars(request_id=exchange.request_id)
            exchange.observe(scheme, carrier, getter)
        return exchange


class Exchange:
    """One request and what it leaves behind."""

    __slots__ = (
        "_active",
        "_started",
        "_token",
        "admitted",
        "error_type",
        "method",
        "path",
        "pipeline",
        "request_id",
        "route",
        "span",
    )

    def __init__(self, pipeline: Pipeline, method: str, path: str, request_id: str) -> None:
        self.pipeline = pipeline
        self.method = method
        self.path = path
        self.request_id = request_id
        self.route = ""  # the route template, once the framework has matched one
        self.error_type = ""  # the error code of a 5xx the service answered itself
        self.span: ServerSpan | None = None
        self.admitted = True
        self._active: Any = None
        self._started = 0.0
        self._token: Token[Exchange | None] | None = _current.set(self)

    def observe(self, scheme: str, carrier: Carrier, getter: Getter[Carrier]) -> None:
        self._started = time.perf_counter()
        self.span = ServerSpan(self.method, self.path, scheme, carrier, getter)
        self.admitted = self.pipeline.slots.take()
        if self.admitted:
            self._active = active_requests(self.method)
            self._active.inc()

    def answered_error(self, code: str, status: int) -> None:
        """The service answered ``status`` with the error ``code`` (``errors.body``)."""
        if status >= 500:
            self.error_type = code

    def fail(self, exception: BaseException) -> None:
        """An exception nothing handled: one error line with its traceback, on the span too."""
        log.error(
            "unhandled exception", exc_info=exception, http_method=self.method, http_path=self.path
        )
        if self.span is not None:
            self.span.record_exception(exception)

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
            context = trace.get_current_span().get_span_context()
            trace_id = format(context.trace_id, "032x") if context.trace_flags.sampled else None
            observe_request(self.method, self.route, status, error_type, seconds, trace_id)
            access_log.info(
                "request",
                http_method=self.method,
                http_route=self.route,
                http_path=self.path,
                http_status=status,
                duration_ms=round(seconds * 1000, 3),
            )
        finally:
            self.span.end()
