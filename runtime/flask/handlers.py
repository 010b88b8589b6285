"""Every error as the contract's JSON body, with the request id (docs/contract.md,
section 3): werkzeug's HTTP errors, invalid JSON and validation failures, the
database's outages, and any other exception, which is logged once with its
traceback and recorded on the request's span before its 500."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import BadRequest, HTTPException, UnprocessableEntity

from . import errors, pipeline
from .pipeline import error_body

# Headers of werkzeug's HTTP errors that mean something to the client.
_KEPT_HEADERS = frozenset({"allow", "retry-after"})


class InvalidJson(BadRequest):
    """The body is not one JSON text in UTF-8."""


class ValidationFailed(UnprocessableEntity):
    """Well-formed JSON that the endpoint cannot take; ``details`` lists why
    (``problem(...)`` for each)."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__()
        self.details = details


def error_response(
    status: int,
    code: str | None = None,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    response = jsonify(error_body(status, code, details))
    response.status_code = status
    response.headers.update(headers or {})
    return response


def on_http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers = {name: value for name, value in exc.get_headers() if name.lower() in _KEPT_HEADERS}
    details = exc.details if isinstance(exc, ValidationFailed) else None
    code = "invalid_json" if isinstance(exc, InvalidJson) else None
    return error_response(status, code, details=details, headers=headers)


def on_database_error(exc: Exception) -> Response:
    outage = errors.outage(exc)
    if outage is None:
        return on_unhandled(exc)  # a bug, not an outage
    status, code, headers = outage
    return error_response(status, code, headers=headers)


def on_unhandled(exc: Exception) -> Response:
    exchange = pipeline.current()
    if exchange is not None:
        exchange.fail(exc)
    return error_response(500, "internal_error")


def install(app: Flask) -> None:
    # Flask picks the handler of the closest class: HTTP errors and database
    # errors first, then anything else.
    app.register_error_handler(HTTPException, on_http_error)
    app.register_error_handler(SQLAlchemyError, on_database_error)
    app.register_error_handler(OSError, on_database_error)
    app.register_error_handler(Exception, on_unhandled)
