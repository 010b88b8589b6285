"""The contract's error responses (docs/contract.md, section 3): the codes, the
messages and the body that every error handler of the service sends."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

RETRY_AFTER = "1"  # seconds, sent with every 503

_CODES = {
    400: "invalid_json",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    422: "validation_error",
    500: "internal_error",
    503: "service_unavailable",
}
_MESSAGES = {
    "invalid_json": "The request body is not valid JSON.",
    "validation_error": "The request is not valid.",
    "internal_error": "Internal server error.",
    "overloaded": "The service is at capacity; try again shortly.",
    "database_unavailable": "The database is unavailable; try again shortly.",
}


def code_for(status: int) -> str:
    """The ``error`` code of an HTTP error status."""
    return _CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")


def message_for(code: str, status: int) -> str:
    return _MESSAGES.get(code) or HTTPStatus(status).phrase + "."


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
