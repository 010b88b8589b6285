"""Outbound HTTP calls (docs/contract.md, section 12): what every attempt of a
call through the runtime's client gets, whichever library makes it, and how a
delivery (a message sent in the background and retried) ends.

The CLIENT span is made here, as the server and database spans are
(tracing.py), not by OpenTelemetry's httpx and requests instrumentations:
measured in the kit (bench/outbound.py), those add 220 to 360 µs of CPU to
each call, against about 20 µs for this span, the propagation, the request id
and the histogram together.
"""

from __future__ import annotations

import random
import time
from collections.abc import MutableMapping
from urllib.parse import urlsplit, urlunsplit

import structlog
from opentelemetry import propagate, trace

from .config import PACKAGE
from .logging import get_logger
from .metrics import count_delivery, observe_client_request
from .semconv import method_label
from .tracing import client_span

# Deliveries: at most this many attempts, the waits between them drawn at
# random (full jitter) below BACKOFF, then twice that, and so on.
ATTEMPTS = 4
BACKOFF = 0.5

log = get_logger(f"{PACKAGE}.outbound")


def _url_full(url: str) -> str:
    """``url.full`` without user information or query string (either may hold a secret)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


class Attempt:
    """One attempt of an outbound call: its CLIENT span, the headers that carry the
    request's trace and id, and its observation in ``http_client_request_duration_seconds``.

    ``headers`` are the outgoing request's, changed in place."""

    __slots__ = ("_started", "address", "method", "span")

    def __init__(self, method: str, url: str, headers: MutableMapping[str, str]) -> None:
        parts = urlsplit(url)
        self.method = method.upper()
        self.address = parts.hostname or ""
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            port = 0
        self.span = client_span(method_label(self.method), self.address, port, _url_full(url))
        propagate.inject(headers, context=trace.set_span_in_context(self.span))
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id and "X-Request-ID" not in headers:
            headers["X-Request-ID"] = request_id
        self._started = time.perf_counter()

    def answered(self, status: int) -> None:
        error_type = str(status) if status >= 400 else ""
        self.span.set_attribute("http.response.status_code", status)
        self._end(status, error_type)

    def failed(self, error: BaseException) -> None:
        """No answer: the client raised ``error``."""
        self._end(None, type(error).__name__)

    def _end(self, status: int | None, error_type: str) -> None:
        observe_client_request(
            self.method, self.address, status, error_type, time.perf_counter() - self._started
        )
        if error_type:
            self.span.set_attribute("error.type", error_type)
            self.span.set_status(trace.StatusCode.ERROR)
        self.span.end()


def backoff(attempt: int, base: float = BACKOFF) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (from 1): full jitter."""
    return random.uniform(0, base * 2 ** (attempt - 1))  # noqa: S311  # not cryptography


class Delivery:
    """The course of one delivery, ended once (``outbound_deliveries_total``, one log line)."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.address = urlsplit(url).hostname or ""
        self.attempts = 0
        self.status: int | None = None
        self.error_type = ""
        self._ended = False

    def answered(self, status: int) -> bool:
        """An answer came; whether to try again (a 5xx)."""
        self.status, self.error_type = status, (str(status) if status >= 400 else "")
        return status >= 500

    def failed(self, error: BaseException) -> None:
        """No answer (refused, broken, timed out): always worth another attempt."""
        self.status, self.error_type = None, type(error).__name__

    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def outcome(self, retry: bool, attempts: int, stopping: bool) -> str | None:
        """How the delivery ends after the attempt just made, or None to try again."""
        if self.delivered():
            return "delivered"
        if not retry or self.attempts >= attempts:
            return "failed"
        return "abandoned" if stopping else None

    def end(self, outcome: str) -> bool:
        """``delivered``, ``failed`` or ``abandoned`` (the service stopped first)."""
        if self._ended:
            return outcome == "delivered"
        self._ended = True
        count_delivery(self.name, outcome)
        if outcome != "delivered":
            (log.error if outcome == "failed" else log.warning)(
                f"delivery {outcome}",
                delivery=self.name,
                server_address=self.address,
                attempts=self.attempts,
                error_type=self.error_type,
                http_status=self.status,
            )
        return outcome == "delivered"
