"""The database as Django sees it: ``DATABASES["default"]`` from DATABASE_URL, on
the worker's connection pool (backends/), a CLIENT span for each statement
(docs/contract.md, section 6), and background work that gives its
connections back."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from . import tasks, tracing
from .config import Settings

BACKENDS = f"{__name__.rsplit('.', 1)[0]}.backends"


def database_settings(settings: Settings) -> dict[str, Any]:
    """``DATABASE_URL`` as Django's ``DATABASES["default"]`` (README.md, "Database")."""
    url = settings.database
    # Connections go back to the worker's pool when a request ends, and the
    # pool checks them before reuse (backends/pooling.py).
    found: dict[str, Any] = {
        "ENGINE": f"{BACKENDS}.postgresql",
        "NAME": url.name,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
    }
    if url.is_sqlite:
        found["ENGINE"] = f"{BACKENDS}.sqlite3"
        found["OPTIONS"] = {
            # How long to wait for another connection's write lock.
            "timeout": settings.db_statement_timeout,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL",
        }
        return found
    found.update(
        {"USER": url.user, "PASSWORD": url.password, "HOST": url.host, "PORT": url.port or ""}
    )
    # Imported here: psycopg costs a SQLite service's boot a third of a second.
    from .postgres import libpq_options

    found["OPTIONS"] = libpq_options(settings)
    return found


def spawn(work: Callable[[], object], name: str) -> Future[None]:
    """Run ``work`` in the background (tasks.py); the database connections it
    opens go back to the pool when it ends."""

    def run() -> None:
        try:
            work()
        finally:
            connections.close_all()

    return tasks.spawn(run, name)


def trace_statement(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """A database execute wrapper (Django's "database instrumentation")."""
    database = context["connection"].settings_dict
    port = database.get("PORT")
    span = tracing.database_span(
        context["connection"].vendor,
        str(database.get("NAME") or ""),
        database.get("HOST") or None,
        int(port) if port else None,
        sql,
    )
    try:
        result = execute(sql, params, many, context)
    except Exception as error:
        tracing.end_database_span(span, error)
        raise
    tracing.end_database_span(span)
    return result


def trace_connection(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Receiver of ``connection_created``: trace the connection's statements."""
    # Django keeps one wrapper per thread and connects it again for each request.
    if trace_statement not in connection.execute_wrappers:
        connection.execute_wrappers.append(trace_statement)
