"""Django's PostgreSQL backend on the worker's connection pool
(backends/pooling.py), with a deadline on every round trip (postgres.py)."""

from __future__ import annotations

import functools
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus

from ...config import get_settings
from ...postgres import CHECK_AFTER_IDLE, Connection, NoAnswer
from .. import pooling


def _usable(connection: Connection) -> bool:
    """A pooled connection answers before reuse; no answer in time fails the request."""
    try:
        # A plain cursor: the check is not one of the request's statements.
        with connection.checking(), psycopg.Cursor(connection) as cursor:
            cursor.execute(";")  # an empty query: the cheapest round trip
    except NoAnswer:
        raise
    except psycopg.Error:
        return False
    return True


def _reset(connection: Connection) -> bool:
    if connection.closed:
        return False
    if connection.info.transaction_status != TransactionStatus.IDLE:
        connection.rollback()
    connection.autocommit = True  # as Django sets it again at the next checkout
    return True


_pool = pooling.pool(reset=_reset, usable=_usable, check_after=CHECK_AFTER_IDLE)


class DatabaseWrapper(base.DatabaseWrapper):
    _opened = 0.0

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        # Django's own connects with psycopg's plain connection class; all it
        # adds is an isolation level from OPTIONS, which this project leaves
        # at PostgreSQL's default (read committed).
        connect = functools.partial(Connection.open, get_settings(), **conn_params)
        connection, self._opened = _pool.get(connect)
        return connection

    def _close(self) -> None:
        if self.connection is not None:
            _pool.put(self.connection, self._opened)
