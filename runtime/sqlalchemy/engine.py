"""SQLAlchemy engines as the service runs them, for requests and migrations alike
(docs/contract.md, section 10).

The pool classes below publish the contract's pool metrics
(``db_client_connection_*``); PostgreSQL connections have a deadline on every
round trip (postgres.py); the rest of SQLAlchemy is used as is.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
from psycopg import Error as DriverError
from psycopg.abc import PQGen
from psycopg.rows import TupleRow
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Engine, ExceptionContext
from sqlalchemy.pool import AsyncAdaptedQueuePool, PoolProxiedConnection, QueuePool
from sqlalchemy.pool.base import ConnectionPoolEntry

from . import metrics, tracing
from .config import Settings
from .postgres import (
    CHECK_AFTER_IDLE,
    Connection,
    Deadline,
    Deadlines,
    NoAnswer,
    libpq_options,
    no_answer,
)


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
    where = {"dbname": url.name, "host": url.host, "port": url.port, "user": url.user}
    where["password"] = url.password
    params = {**{key: value for key, value in where.items() if value}, **connect_args(settings)}
    if asyncio:
        options["async_creator"] = lambda: AsyncConnection.open(settings, **params)
    else:
        options["creator"] = lambda: Connection.open(settings, **params)
    return options


def instrument(engine: Engine) -> None:
    """What the service adds to SQLAlchemy: SQLite's WAL, the check of a pooled
    PostgreSQL connection before use, and a span per statement."""
    tune_sqlite(engine)
    check_before_use(engine)
    trace_statements(engine)


def check_before_use(engine: Engine) -> None:
    """Check a pooled PostgreSQL connection before a request uses it.

    SQLAlchemy's ``pool_pre_ping`` does this, but waits for the answer as long
    as for any statement and then retries on a new connection. Here a check
    that gets no answer within DB_CONNECT_TIMEOUT fails the request at once
    (503), and one that finds the connection dead (a database restart)
    replaces every pooled connection, as pre-ping does. A connection given
    back within CHECK_AFTER_IDLE is not checked again.
    """
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["returned"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(
        dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        returned = record.info.pop("returned", None)
        # A new connection has just answered; a recently used one is trusted.
        if returned is None or time.monotonic() - returned < CHECK_AFTER_IDLE:
            return
        driver = proxy.driver_connection
        assert isinstance(driver, Deadlines)
        cursor = dbapi_connection.cursor()
        try:
            with driver.checking():
                cursor.execute(";")
        except NoAnswer:
            raise
        except DriverError as error:
            raise exc.InvalidatePoolError(str(error)) from error
        finally:
            cursor.close()


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
    """A CLIENT span per statement, child of the request's span (contract, section 6)."""
    url = engine.url
    system = engine.dialect.name
    namespace = url.database or ""
    port = url.port or (5432 if system == "postgresql" else None)

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _start(_: Any, __: Any, statement: str, parameters: Any, context: Any, ___: bool) -> Any:
        context.statement_span = tracing.database_span(system, namespace, url.host, port, statement)
        return statement, parameters

    @event.listens_for(engine, "after_cursor_execute")
    def _end(_: Any, __: Any, ___: str, ____: Any, context: Any, _____: bool) -> None:
        tracing.end_database_span(context.statement_span)

    @event.listens_for(engine, "handle_error")
    def _failed(failure: ExceptionContext) -> None:
        span = getattr(failure.execution_context, "statement_span", None)
        if span is not None:
            tracing.end_database_span(span, failure.original_exception)


class _PoolMetrics(QueuePool):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        metrics.init_pool_metrics(self.size(), max(kwargs.get("max_overflow", 10), 0))

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
            self._publish_usage()
        waited.observe(time.perf_counter() - started)
        return connection

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        super()._do_return_conn(record)
        self._publish_usage()

    def dispose(self) -> None:
        super().dispose()
        self._publish_usage()

    def _publish_usage(self) -> None:
        metrics.set_pool_usage(used=self.checkedout(), idle=self.checkedin())


class InstrumentedQueuePool(_PoolMetrics, QueuePool):
    pass


class InstrumentedAsyncQueuePool(_PoolMetrics, AsyncAdaptedQueuePool):
    pass


class AsyncConnection(Deadlines, psycopg.AsyncConnection[TupleRow]):
    """psycopg's asyncio connection; every wait for the server has a deadline.

    Cancelling a task does not do here: psycopg answers a cancelled wait by
    asking the server to cancel the query, which waits on the same silent
    network for seconds more.
    """

    @classmethod
    async def open(cls, settings: Settings, conninfo: str = "", **kwargs: Any) -> AsyncConnection:
        connection = await cls.connect(conninfo, **kwargs)
        connection.set_deadlines(settings)
        return connection

    async def wait(self, gen: PQGen[Any], *args: Any, **kwargs: Any) -> Any:
        seconds = self.wait_deadline
        deadline = Deadline(self.pgconn.socket)
        timer = asyncio.get_running_loop().call_later(seconds, deadline.fire)
        try:
            return await super().wait(gen, *args, **kwargs)
        except psycopg.OperationalError as error:
            if deadline.fired:
                raise no_answer(seconds) from error
            raise
        finally:
            deadline.done = True
            timer.cancel()
