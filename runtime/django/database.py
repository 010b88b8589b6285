"""The route templates that name requests in spans, metrics and access lines
alike, and a CLIENT span for each database statement (contract, section 6).

The server span is the request middleware's (middleware.py); the tracer
provider is created per worker, after fork (tracing.py, called by
gunicorn.conf.py's ``post_fork``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.urls import ResolverMatch

from . import tracing

_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def route_template(match: ResolverMatch | None) -> str:
    """``api/items/<int:item_id>`` as the contract writes it, ``/api/items/{item_id}``;
    empty when no route matched."""
    if match is None:
        return ""
    return "/" + _CONVERTER.sub(r"{\1}", match.route)


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


def _trace_connection(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    # Django keeps one wrapper per thread and connects it again for each request.
    if trace_statement not in connection.execute_wrappers:
        connection.execute_wrappers.append(trace_statement)


def instrument() -> None:
    """Trace database statements (SQLite and PostgreSQL); idempotent."""
    connection_created.connect(_trace_connection, dispatch_uid="trace-statements")
