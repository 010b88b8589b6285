"""The per-request middleware: server span, log context, load shedding,
metrics, access log and the error boundary, as one pure ASGI layer timed by
one clock. It sits inside asgi-correlation-id, so the request id is known.
"""

from __future__ import annotations

import time

import orjson
import structlog
from asgi_correlation_id import correlation_id
from opentelemetry.propagators.textmap import Getter
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .access import record_request
from .config import Settings
from .errors import ERROR_TYPE, error_body
from .http_errors import RETRY_AFTER
from .logging import get_logger
from .metrics import active_requests
from .tracing import ServerSpan

# Probes and the scrape are not requests of the service: no span, no metrics,
# no access line, no shedding (contract, sections 3 and 7).
EXEMPT_PATHS = frozenset({"/healthz", "/ready", "/metrics"})

log = get_logger(__name__)

RawHeaders = list[tuple[bytes, bytes]]


class ScopeHeaders(Getter[RawHeaders]):
    """Propagation headers (``traceparent``) straight from the ASGI scope."""

    def get(self, carrier: RawHeaders, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [value.decode("latin-1") for header, value in carrier if header == name]
        return values or None

    def keys(self, carrier: RawHeaders) -> list[str]:
        return [header.decode("latin-1") for header, _ in carrier]


SCOPE_HEADERS = ScopeHeaders()


class RequestMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_in_flight = settings.max_in_flight
        self.max_body = settings.max_request_body_bytes
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        method = scope["method"]
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=correlation_id.get())
        span = ServerSpan(method, scope["path"], scope["scheme"], scope["headers"], SCOPE_HEADERS)
        status = 500
        response_started = False

        async def send_with_status(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
            await send(message)

        try:
            if self.in_flight >= self.max_in_flight:
                await self._refuse(scope, send_with_status)
            else:
                self.in_flight += 1
                active = active_requests(method)
                active.inc()
                try:
                    await self.app(scope, self._limit_body(scope, receive), send_with_status)
                except Exception as exc:
                    log.exception(
                        "unhandled exception", http_method=method, http_path=scope["path"]
                    )
                    span.record_exception(exc)
                    if not response_started:
                        scope[ERROR_TYPE] = "internal_error"
                        await _send_json(send_with_status, 500, error_body("internal_error", 500))
                finally:
                    self.in_flight -= 1
                    active.dec()
            route = scope.get("route")
            template: str = getattr(route, "path", "") if route is not None else ""
            error_type = scope.get(ERROR_TYPE, "internal_error") if status >= 500 else ""
            span.finish(method, template, status, error_type)
            seconds = time.perf_counter() - started
            record_request(method, template, scope["path"], status, error_type, seconds)
        finally:
            span.end()

    def _limit_body(self, scope: Scope, receive: Receive) -> Receive:
        """A receive that fails with 413 once the body is known to be too large.

        The check happens when the endpoint reads the body, after routing, so
        the 413 is answered by the error handlers and counted under its route.
        """
        declared = Headers(scope=scope).get("content-length", "")
        too_large = declared.isdigit() and int(declared) > self.max_body
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            if too_large:
                raise HTTPException(status_code=413)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(status_code=413)
            return message

        return receive_within_limit

    async def _refuse(self, scope: Scope, send: Send) -> None:
        scope[ERROR_TYPE] = "overloaded"
        body = error_body("overloaded", 503)
        await _send_json(send, 503, body, retry_after=True)


async def _send_json(
    send: Send, status: int, body: dict[str, object], retry_after: bool = False
) -> None:
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if retry_after:
        headers.append((b"retry-after", RETRY_AFTER.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
