"""Every error as the contract's JSON body, with the request id (section 3).

Django's error views (``handler404`` and friends in urls.py, the CSRF failure
view) and the request middleware answer with ``ErrorResponse``; the middleware
reads its ``error_code`` for the metric's ``error_type`` label.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse

from . import tracing
from .dberrors import is_unavailable
from .http_errors import RETRY_AFTER, error_body
from .logging import get_logger

log = get_logger(__name__)


class ErrorResponse(JsonResponse):
    def __init__(
        self,
        status: int,
        code: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        request_id = structlog.contextvars.get_contextvars().get("request_id", "")
        super().__init__(
            error_body(code, request_id, status, details), status=status, headers=headers
        )
        self.error_code = code


def invalid_json() -> ErrorResponse:
    return ErrorResponse(400, "invalid_json")


def unsupported_media_type() -> ErrorResponse:
    return ErrorResponse(415, "unsupported_media_type")


def validation_error(details: list[dict[str, Any]]) -> ErrorResponse:
    return ErrorResponse(422, "validation_error", details=details)


def not_found_response() -> ErrorResponse:
    return ErrorResponse(404, "not_found")


def method_not_allowed(allowed: Iterable[str]) -> ErrorResponse:
    return ErrorResponse(405, "method_not_allowed", headers={"Allow": ", ".join(sorted(allowed))})


def overloaded() -> ErrorResponse:
    return ErrorResponse(503, "overloaded", headers={"Retry-After": RETRY_AFTER})


def response_for_exception(exc: Exception) -> ErrorResponse | None:
    """The answer to an exception a view raised, or None to let Django handle it."""
    if isinstance(exc, RequestDataTooBig):
        return ErrorResponse(413, "payload_too_large")
    if is_unavailable(exc):
        log.warning("database unavailable", error=str(exc).splitlines()[0][:200])
        return ErrorResponse(503, "database_unavailable", headers={"Retry-After": RETRY_AFTER})
    return None


def log_unhandled_exception(sender: Any, request: HttpRequest, **kwargs: Any) -> None:
    """Receiver of ``got_request_exception``: called inside Django's ``except`` block."""
    log.exception("unhandled exception", http_method=request.method, http_path=request.path)
    error = sys.exception()
    if error is not None:
        tracing.record_exception(error)


# Django's error views (urls.py ``handler*`` and ``CSRF_FAILURE_VIEW``). A
# suspicious request (a Host outside ALLOWED_HOSTS, say) is Django's 400.


def bad_request(request: HttpRequest, exception: Exception) -> ErrorResponse:
    return ErrorResponse(400, "bad_request")


def permission_denied(request: HttpRequest, exception: Exception) -> ErrorResponse:
    return ErrorResponse(403, "forbidden")


def not_found(request: HttpRequest, exception: Exception) -> ErrorResponse:
    return not_found_response()


def server_error(request: HttpRequest) -> ErrorResponse:
    return ErrorResponse(500, "internal_error")


def csrf_failure(request: HttpRequest, reason: str = "") -> ErrorResponse:
    return ErrorResponse(403, "forbidden")
