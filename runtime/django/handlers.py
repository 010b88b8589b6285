"""Every error as the contract's JSON body, with the request id (docs/contract.md,
section 3), and JSON request bodies read as the contract says.

Views raise (``read_json``'s errors, ``ValidationFailed``, ``Http404``,
``PermissionDenied``) or return Django's own error responses; the request
middleware turns them all into ``ErrorResponse``, so any view of any app keeps
the contract without doing anything for it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from json import JSONDecodeError
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse

from . import errors, pipeline
from .json_body import is_json_media_type, parse_json
from .pipeline import error_body

# Headers of Django's error responses that mean something to the client.
KEPT_HEADERS = ("Allow", "Retry-After")


class ErrorResponse(JsonResponse):
    def __init__(
        self,
        status: int,
        code: str | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error_body(status, code, details), status=status, headers=headers)


class InvalidJson(ValueError):
    """The request body is not one JSON text in UTF-8: a 400."""


class NotJson(ValueError):
    """The request body's media type is not JSON: a 415."""


class ValidationFailed(ValueError):
    """Well-formed JSON that the view cannot take: a 422 whose ``details`` list why
    (``problem(...)`` for each)."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__(details)
        self.details = details


def read_json(request: HttpRequest) -> Any:
    """The request body, parsed; a body above MAX_REQUEST_BODY_BYTES is a 413."""
    if not is_json_media_type(request.headers.get("Content-Type")):
        raise NotJson
    try:
        return parse_json(request.body)
    except JSONDecodeError:
        raise InvalidJson from None


def response_for_exception(exc: Exception) -> ErrorResponse | None:
    """The answer to an exception a view raised, or None to let Django handle it."""
    if isinstance(exc, RequestDataTooBig):
        return ErrorResponse(413)
    if isinstance(exc, InvalidJson):
        return ErrorResponse(400, "invalid_json")
    if isinstance(exc, NotJson):
        return ErrorResponse(415)
    if isinstance(exc, ValidationFailed):
        return ErrorResponse(422, details=exc.details)
    outage = errors.outage(exc)
    if outage is not None:
        status, code, headers = outage
        return ErrorResponse(status, code, headers=headers)
    return None


def log_unhandled_exception(sender: Any, request: HttpRequest, **kwargs: Any) -> None:
    """Receiver of ``got_request_exception``: called inside Django's ``except`` block."""
    error, exchange = sys.exception(), pipeline.current()
    if error is not None and exchange is not None:
        exchange.fail(error)
