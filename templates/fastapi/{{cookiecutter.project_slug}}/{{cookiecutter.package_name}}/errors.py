"""Every error as the contract's JSON body, with the request id (section 3)."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from .dberrors import is_unavailable
from .logging import get_logger

log = get_logger(__name__)

# The ASGI scope key through which a handler tells the request middleware
# which error it answered, for the metric's ``error_type`` label.
ERROR_TYPE = "error_type"
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


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message, "request_id": correlation_id.get()}
    if details is not None:
        body["details"] = details
    return body


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    details: list[Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    if status >= 500:
        request.scope[ERROR_TYPE] = code
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


async def on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code = CODES.get(status, HTTPStatus(status).phrase.lower().replace(" ", "_"))
    message = HTTPStatus(status).phrase + "."
    headers = dict(exc.headers or {})
    if status == 400:
        message = "The request body is not valid JSON."
    elif status == 405:
        headers["Allow"] = _allowed_methods(request, headers.get("Allow", ""))
    return error_response(request, status, code, message, headers=headers)


def _allowed_methods(request: Request, starlette_allow: str) -> str:
    """Every method the path accepts. Starlette names only the first route that
    matched the path, and GET and POST on one path are two routes."""
    allowed = {method.strip() for method in starlette_allow.split(",") if method.strip()}
    template = getattr(request.scope.get("route"), "path", None)
    operations = request.app.openapi().get("paths", {}).get(template, {})
    allowed |= {method.upper() for method in operations}
    if "GET" in allowed:
        allowed.add("HEAD")
    return ", ".join(sorted(allowed))


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return error_response(request, 400, "invalid_json", "The request body is not valid JSON.")
    details = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg"), "type": error.get("type")}
        for error in errors
    ]
    return error_response(
        request, 422, "validation_error", "The request is not valid.", details=details
    )


async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
    if not is_unavailable(exc):
        raise exc  # a bug, not an outage: the request middleware answers 500
    log.warning("database unavailable", error=str(exc).splitlines()[0][:200])
    return error_response(
        request,
        503,
        "database_unavailable",
        "The database is unavailable; try again shortly.",
        headers={"Retry-After": RETRY_AFTER},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(SQLAlchemyError, on_database_error)
    app.add_exception_handler(OSError, on_database_error)
