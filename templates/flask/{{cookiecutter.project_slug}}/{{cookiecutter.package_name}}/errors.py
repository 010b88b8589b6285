"""Every error as the contract's JSON body, with the request id (section 3).

Unhandled exceptions end here too, instead of in Flask's default handler: they
are logged once, with the traceback, and recorded on the server span.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import BadRequest, HTTPException, UnprocessableEntity

from . import tracing
from .dberrors import is_unavailable
from .http_errors import RETRY_AFTER, code_for, error_body
from .logging import get_logger
from .request_context import REQUEST_ID_KEY

log = get_logger(__name__)

# Headers of werkzeug's HTTP errors that mean something to the client.
_KEPT_HEADERS = frozenset({"allow", "retry-after"})


class InvalidJson(BadRequest):
    """The body is not one JSON document in UTF-8."""


class ValidationFailed(UnprocessableEntity):
    """Well-formed JSON that the endpoint cannot take; ``details`` lists why."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__()
        self.details = details


def error_response(
    status: int,
    code: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    if status >= 500:
        g.error_type = code  # the metric's error_type label
    response = jsonify(error_body(code, request.environ.get(REQUEST_ID_KEY), status, details))
    response.status_code = status
    response.headers.update(headers or {})
    return response


def on_http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers = {name: value for name, value in exc.get_headers() if name.lower() in _KEPT_HEADERS}
    details = exc.details if isinstance(exc, ValidationFailed) else None
    code = "invalid_json" if isinstance(exc, InvalidJson) else code_for(status)
    return error_response(status, code, details=details, headers=headers)


def on_database_error(exc: Exception) -> Response:
    if not is_unavailable(exc):
        return on_unhandled(exc)  # a bug, not an outage
    log.warning("database unavailable", error=str(exc).splitlines()[0][:200])
    return error_response(503, "database_unavailable", headers={"Retry-After": RETRY_AFTER})


def on_unhandled(exc: Exception) -> Response:
    log.error(
        "unhandled exception", exc_info=exc, http_method=request.method, http_path=request.path
    )
    tracing.record_exception(exc)
    return error_response(500, "internal_error")


def register_error_handlers(app: Flask) -> None:
    # Flask picks the handler of the closest class: HTTP errors and database
    # errors first, then anything else.
    app.register_error_handler(HTTPException, on_http_error)
    app.register_error_handler(SQLAlchemyError, on_database_error)
    app.register_error_handler(OSError, on_database_error)
    app.register_error_handler(Exception, on_unhandled)
