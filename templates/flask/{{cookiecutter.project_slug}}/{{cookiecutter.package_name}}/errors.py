"""Every error as the contract's JSON body, with the request id (section 3).

Unhandled exceptions end here too, instead of in Flask's default handler: they
are logged once, with the traceback, and recorded on the server span.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, jsonify, request
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, UnprocessableEntity

from .dberrors import is_unavailable
from .logging import get_logger
from .request_context import REQUEST_ID_KEY

log = get_logger(__name__)

RETRY_AFTER = "1"
CODES = {
    400: "invalid_json",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    422: "validation_error",
    500: "internal_error",
    503: "service_unavailable",
}
MESSAGES = {
    400: "The request body is not valid JSON.",
    422: "The request is not valid.",
}
# Headers of werkzeug's HTTP errors that mean something to the client.
_KEPT_HEADERS = frozenset({"allow", "retry-after"})


class ValidationFailed(UnprocessableEntity):
    """Well-formed JSON that the endpoint cannot take; ``details`` lists why."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__()
        self.details = details


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    if status >= 500:
        g.error_type = code  # the metric's error_type label
    body: dict[str, Any] = {
        "error": code,
        "message": message,
        "request_id": request.environ.get(REQUEST_ID_KEY, ""),
    }
    if details is not None:
        body["details"] = details
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def on_http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    phrase = HTTPStatus(status).phrase
    headers = {name: value for name, value in exc.get_headers() if name.lower() in _KEPT_HEADERS}
    return error_response(
        status,
        CODES.get(status, phrase.lower().replace(" ", "_")),
        MESSAGES.get(status, phrase + "."),
        details=exc.details if isinstance(exc, ValidationFailed) else None,
        headers=headers,
    )


def on_database_error(exc: Exception) -> Response:
    if not is_unavailable(exc):
        return on_unhandled(exc)  # a bug, not an outage
    log.warning("database unavailable", error=str(exc).splitlines()[0][:200])
    return error_response(
        503,
        "database_unavailable",
        "The database is unavailable; try again shortly.",
        headers={"Retry-After": RETRY_AFTER},
    )


def on_unhandled(exc: Exception) -> Response:
    log.error(
        "unhandled exception", exc_info=exc, http_method=request.method, http_path=request.path
    )
    span = trace.get_current_span()
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
    return error_response(500, "internal_error", "Internal server error.")


def register_error_handlers(app: Flask) -> None:
    # Flask picks the handler of the closest class: HTTP errors and database
    # errors first, then anything else.
    app.register_error_handler(HTTPException, on_http_error)
    app.register_error_handler(SQLAlchemyError, on_database_error)
    app.register_error_handler(OSError, on_database_error)
    app.register_error_handler(Exception, on_unhandled)
