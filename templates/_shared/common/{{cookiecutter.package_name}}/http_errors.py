"""The contract's error responses (docs/contract.md, section 3): the codes, the
messages and the body that every error handler of the service sends."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

RETRY_AFTER = "1"  # seconds, sent with every 503

# The statuses whose code is not simply their reason phrase, and the one
# status with two codes: 400 is ``invalid_json`` when the body is to blame.
_CODES = {
    413: "payload_too_large",
    422: "validation_error",
    500: "internal_error",
}
MESSAGES = {
    "invalid_json": "The request body is not valid JSON.",
    "bad_request": "Bad request.",
    "forbidden": "Forbidden.",
    "not_found": "Not found.",
    "method_not_allowed": "Method not allowed.",
    "payload_too_large": "The request body is too large.",
    "validation_error": "The request is not valid.",
    "internal_error": "Internal server error.",
    "overloaded": "The service is at capacity; try again shortly.",
    "database_unavailable": "The database is unavailable; try again shortly.",
}


def code_for(status: int) -> str:
    """The ``error`` code of an HTTP error status (``bad_request`` for a 400)."""
    return _CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")


def message_for(code: str, status: int) -> str:
    return MESSAGES.get(code) or HTTPStatus(status).phrase.capitalize() + "."


def problem(loc: list[str | int], kind: str, message: str) -> dict[str, Any]:
    """One entry of a 422's ``details``, in pydantic's shape: where, what, and why."""
    return {"loc": loc, "msg": message, "type": kind}


def error_body(
    code: str, request_id: str | None, status: int, details: list[Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "error": code,
        "message": message_for(code, status),
        "request_id": request_id,
    }
    if details is not None:
        body["details"] = details
    return body
