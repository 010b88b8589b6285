"""PostgreSQL under SQLAlchemy: psycopg connections with a deadline on every
round trip (postgres.py), and their check before reuse. Imported only by a
service whose database is PostgreSQL (engine.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
from psycopg import Error as DriverError
from psycopg.abc import PQGen
from psycopg.rows import TupleRow
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.pool.base import ConnectionPoolEntry

from .config import Settings
from .postgres import (
    CHECK_AFTER_IDLE,
    Connection,
    Deadlines,
    NoAnswer,
    libpq_options,
    no_answer,
    shut_down,
)


def connection_options(settings: Settings, *, asyncio: bool) -> dict[str, Any]:
    """The engine's options that open connections with deadlines."""
    url = settings.database
    where = {"dbname": url.name, "host": url.host, "port": url.port, "user": url.user}
    where["password"] = url.password
    params = {**{key: value for key, value in where.items() if value}, **libpq_options(settings)}
    if asyncio:
        return {"async_creator": lambda: AsyncConnection.open(settings, **params)}
    return {"creator": lambda: Connection.open(settings, **params)}


def check_before_use(engine: Engine) -> None:
    """Check a pooled PostgreSQL connection before a request uses it.

    SQLAlchemy's ``pool_pre_ping`` does this, but waits for the answer as long
    as for any statement and then retries on a new connection. Here a check
    that gets no answer within DB_CONNECT_TIMEOUT fails the request at once
    (503), and one that finds the connection dead (a database restart)
    replaces every pooled connection, as pre-ping does. A connection given
    back within CHECK_AFTER_IDLE is not checked again.
    """

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


class Deadline:
    """One wait's deadline; ``fire`` shuts the socket down if the wait is still on."""

    __slots__ = ("done", "fileno", "fired")

    def __init__(self, fileno: int) -> None:
        self.fileno = fileno
        self.done = False
        self.fired = False

    def fire(self) -> None:
        if self.done:
            return
        self.fired = True
        shut_down(self.fileno)


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
