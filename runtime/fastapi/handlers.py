"""Every error as the contract's JSON body, with the request id (docs/contract.md,
section 3): FastAPI's and Starlette's HTTP errors, validation errors, and the
database's outages. An exception none of these answers reaches the request
pipeline (asgi.py), which logs it and answers 500."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from . import errors
from .pipeline import error_body


def error_response(
    status: int,
    code: str | None = None,
    *,
    details: list[Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(status, code, details), status_code=status, headers=headers)


async def on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status == 405:
        headers["Allow"] = _allowed_methods(request, headers.get("Allow", ""))
    code = errors.code_for(status)
    if status == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        # FastAPI's answer to a body it cannot decode (not UTF-8, nested too deeply).
        code = "invalid_json"
    return error_response(status, code, headers=headers)


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
    found = exc.errors()
    if any(_not_json(error) for error in found):
        return error_response(400, "invalid_json")
    details = [
        errors.problem(list(error.get("loc", ())), str(error.get("type")), str(error.get("msg")))
        for error in found
    ]
    return error_response(422, "validation_error", details=details)


def _not_json(error: Any) -> bool:
    # FastAPI does not parse an empty body, and reports the body as missing.
    return bool(
        error.get("type") == "json_invalid"
        or (error.get("type") == "missing" and tuple(error.get("loc", ())) == ("body",))
    )


async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
    outage = errors.outage(exc)
    if outage is None:
        raise exc  # a bug, not an outage: the request pipeline answers 500
    status, code, headers = outage
    return error_response(status, code, headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(SQLAlchemyError, on_database_error)
    app.add_exception_handler(OSError, on_database_error)
