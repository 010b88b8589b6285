"""The contract's error vocabulary (docs/contract.md, section 3): the codes and
messages of every error response of the service, and which exceptions are an
outage rather than a bug. ``pipeline.error_body`` builds the bodies.
"""

from __future__ import annotations

import sqlite3
import sys
from http import HTTPStatus
from typing import Any

from .logging import get_logger

RETRY_AFTER = "1"  # seconds, sent with every 503

log = get_logger(__name__)

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


def outage(exc: BaseException) -> tuple[int, str, dict[str, str]] | None:
    """``(503, "database_unavailable", headers)`` when ``exc`` means the database
    cannot serve now (logged once, here); None for anything else, a bug among them."""
    if not is_unavailable(exc):
        return None
    log.warning("database unavailable", error=str(exc).splitlines()[0][:200])
    return 503, "database_unavailable", {"Retry-After": RETRY_AFTER}


# Refused or timed-out connections, a full pool, a server shutting down and a
# statement cancelled by ``statement_timeout`` are outages the client can
# retry; a missing table or a constraint violation is not, and stays a 500.
#
# SQLSTATE prefixes: 08 connection exception, 53 insufficient resources,
# 57P0x server shutting down or starting, 57014 query cancelled (timeout).
_PG_UNAVAILABLE = ("08", "53", "57P01", "57P02", "57P03", "57014")
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
)
# Pool exhaustion, by class name so that SQLAlchemy need not be installed.
_POOL_TIMEOUTS = (("sqlalchemy.exc", "TimeoutError"),)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception linked to it (driver error, cause, context)."""
    seen: list[BaseException] = []
    stack = [exc]
    while stack:
        current = stack.pop()
        if any(current is known for known in seen):
            continue
        seen.append(current)
        for linked in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                stack.append(linked)
    return seen


def _unavailable(exc: BaseException) -> bool:
    kind = type(exc)
    if any(
        kind.__name__ == name and kind.__module__.startswith(package)
        for package, name in _POOL_TIMEOUTS
    ):
        return True
    if getattr(exc, "connection_invalidated", False):
        return True
    # A psycopg error exists only once the driver is loaded; a service on
    # SQLite never pays for importing it.
    psycopg: Any = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.Error):
        state: str | None = exc.sqlstate
        if state is None:
            return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
        return state.startswith(_PG_UNAVAILABLE)
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        return any(text in message for text in _SQLITE_UNAVAILABLE)
    return isinstance(exc, ConnectionError | TimeoutError)


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) means the database cannot serve now."""
    return any(_unavailable(linked) for linked in _chain(exc))
