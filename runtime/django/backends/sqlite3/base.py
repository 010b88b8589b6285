"""Django's SQLite backend on the worker's connection pool (backends/pooling.py)."""

from __future__ import annotations

import functools
import sqlite3
from typing import Any

from django.db.backends.sqlite3 import base

from .. import pooling


def _reset(connection: sqlite3.Connection) -> bool:
    if connection.in_transaction:
        connection.rollback()
    return True


_pool = pooling.pool(reset=_reset)


class DatabaseWrapper(base.DatabaseWrapper):
    _opened = 0.0

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connect = functools.partial(super().get_new_connection, conn_params)
        connection, self._opened = _pool.get(connect)
        return connection

    def _close(self) -> None:
        if self.connection is not None:
            _pool.put(self.connection, self._opened)
