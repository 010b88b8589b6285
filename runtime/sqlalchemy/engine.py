"""SQLAlchemy engines as the service runs them, for requests and migrations alike
(docs/contract.md, section 10).

The pool classes below publish the contract's pool metrics
(``db_client_connection_*``); PostgreSQL connections have a deadline on every
round trip (postgres.py, postgres_engine.py); the rest of SQLAlchemy is used
as is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, PoolProxiedConnection, QueuePool
from sqlalchemy.pool.base import ConnectionPoolEntry

from . import metrics, tracing
from .config import Settings


def database_url(settings: Settings, *, asyncio: bool) -> URL:
    """``DATABASE_URL`` with the driver the service uses (psycopg 3, sqlite3/aiosqlite)."""
    url = settings.database
    if url.is_sqlite:
        return URL.create("sqlite+aiosqlite" if asyncio else "sqlite+pysqlite", database=url.name)
    return URL.create(
        "postgresql+psycopg",
        username=url.user or None,
        password=url.password or None,
        host=url.host or None,
        port=url.port,
        database=url.name or None,
        query=dict(url.options),
    )


def connect_args(settings: Settings) -> dict[str, Any]:
    if settings.database.is_sqlite:
        # How long to wait for another connection's lock before "database is locked".
        return {"timeout": settings.db_statement_timeout}
    from .postgres import libpq_options

    return libpq_options(settings)


def engine_options(settings: Settings, *, asyncio: bool) -> dict[str, Any]:
    """``create_engine`` (or ``create_async_engine``) options: the instrumented
    pool sized from the settings, and PostgreSQL connections with deadlines."""
    options: dict[str, Any] = {
        "poolclass": InstrumentedAsyncQueuePool if asyncio else InstrumentedQueuePool,
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout,
        "pool_recycle": settings.db_pool_recycle,
        # A statement's error names its SQL, never its parameters: they are the
        # request's data, and errors reach the logs and the error tracker.
        "hide_parameters": True,
    }
    url = settings.database
    if url.is_sqlite:
        options["connect_args"] = connect_args(settings)
        return options
    # Imported here: psycopg costs a SQLite service's boot a tenth of a second and more.
    from .postgres_engine import connection_options

    return options | connection_options(settings, asyncio=asyncio)


def instrument(engine: Engine) -> None:
    """What the service adds to SQLAlchemy: SQLite's WAL, the check of a pooled
    PostgreSQL connection before use, and a span per statement."""
    tune_sqlite(engine)
    if engine.dialect.name == "postgresql":
        from .postgres_engine import check_before_use

        check_before_use(engine)
    trace_statements(engine)


def tune_sqlite(engine: Engine) -> None:
    """WAL lets readers proceed while one connection writes."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


def trace_statements(engine: Engine) -> None:
    """A CLIENT span per statement, child of the request's span (contract, section 6).

    The dialect's execute methods are wrapped rather than listened to: once an
    engine has a cursor event, SQLAlchemy sends every statement through its
    event dispatch, which cost more than the span itself (docs/performance.md).
    """
    url = engine.url
    system = engine.dialect.name
    namespace = url.database or ""
    port = url.port or (5432 if system == "postgresql" else None)

    def traced(execute: Callable[..., None]) -> Callable[..., None]:
        def run(cursor: Any, statement: str, *rest: Any) -> None:
            span = tracing.database_span(system, namespace, url.host, port, statement)
            try:
                execute(cursor, statement, *rest)
            except BaseException as error:
                tracing.end_database_span(span, error)
                raise
            tracing.end_database_span(span)

        return run

    dialect = engine.dialect
    for name in ("do_execute", "do_execute_no_params", "do_executemany"):
        setattr(dialect, name, traced(getattr(dialect, name)))


class _PoolMetrics(QueuePool):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        metrics.init_pool_metrics(self.size(), max(kwargs.get("max_overflow", 10), 0), self._usage)

    def connect(self) -> PoolProxiedConnection:
        series = metrics.pool_series()
        pending, waited = series.pending, series.wait_time
        pending.inc()
        started = time.perf_counter()
        try:
            connection = super().connect()
        except exc.TimeoutError:
            # A wait that ended without a connection is a wait too (contract, section 7).
            waited.observe(time.perf_counter() - started)
            series.timeouts.inc()
            raise
        finally:
            pending.dec()
            series.changed()
        waited.observe(time.perf_counter() - started)
        return connection

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        super()._do_return_conn(record)
        metrics.pool_series().changed()

    def dispose(self) -> None:
        super().dispose()
        metrics.pool_series().changed()

    def _usage(self) -> tuple[int, int]:
        return self.checkedout(), self.checkedin()


class InstrumentedQueuePool(_PoolMetrics, QueuePool):
    pass


class InstrumentedAsyncQueuePool(_PoolMetrics, AsyncAdaptedQueuePool):
    pass
