"""Every error as the contract's JSON body, with the request id (section 3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from . import http_errors
from .dberrors import is_unavailable
from .http_errors import RETRY_AFTER, code_for, problem
from .logging import get_logger

log = get_logger(__name__)

# The ASGI scope key through which a handler tells the request middleware
# which error it answered, for the metric's ``error_type`` label.
ERROR_TYPE = "error_type"


def error_body(code: str, status: int, details: list[Any] | None = None) -> dict[str, Any]:
    return http_errors.error_body(code, correlation_id.get(), status, details)


def error_response(
    request: Request,
    status: int,
    code: str,
    *,
    details: list[Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    if status >= 500:
        request.scope[ERROR_TYPE] = code
    return JSONResponse(error_body(code, status, details), status_code=status, headers=headers)


async def on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status == 405:
        headers["Allow"] = _allowed_methods(request, headers.get("Allow", ""))
    code = code_for(status)
    if status == 400 and isinstance(exc.__cause__, ValueError):
        code = "invalid_json"  # FastAPI's answer to a body it cannot decode (not UTF-8)
    return error_response(request, status, code, headers=headers)


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
    if any(_not_json(error) for error in errors):
        return error_response(request, 400, "invalid_json")
    details = [
        problem(list(error.get("loc", ())), str(error.get("type")), str(error.get("msg")))
        for error in errors
    ]
    return error_response(request, 422, "validation_error", details=details)


def _not_json(error: Any) -> bool:
    # FastAPI does not parse an empty body, and reports the body as missing.
    return bool(
        error.get("type") == "json_invalid"
        or (error.get("type") == "missing" and tuple(error.get("loc", ())) == ("body",))
    )


async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
    if not is_unavailable(exc):
        raise exc  # a bug, not an outage: the request middleware answers 500
    log.warning("database unavailable", error=str(exc).splitlines()[0][:200])
    return error_response(
        request, 503, "database_unavailable", headers={"Retry-After": RETRY_AFTER}
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(SQLAlchemyError, on_database_error)
    app.add_exception_handler(OSError, on_database_error)
