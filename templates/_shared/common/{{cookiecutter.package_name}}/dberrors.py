"""Tell an unavailable database (503, retry later) from a bug (500).

Refused or timed-out connections, a full pool, a server shutting down and a
statement cancelled by ``statement_timeout`` are outages the client can
retry; a missing table or a constraint violation is not, and stays a 500.
"""

from __future__ import annotations

import sqlite3
import sys
from typing import Any

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
    return any(_unavailable(e) for e in _chain(exc))
