"""Django's SQLite backend with a connection pool per worker (backends/pooling.py)."""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from django.db.backends.sqlite3 import base

from ...config import get_settings
from .. import pooling


class ConnectionTimeout(TimeoutError):
    """No connection became free within DB_POOL_TIMEOUT (a 503, like a full pool)."""


class ConnectionPool:
    """Keeps ``size`` connections open between requests and opens at most
    ``size + overflow`` at once; a connection older than ``recycle`` seconds
    is replaced. Django pools PostgreSQL connections (``OPTIONS["pool"]``) but not
    SQLite ones, so SQLite gets this small pool for the same settings and metrics."""

    def __init__(self, size: int, overflow: int, timeout: float, recycle: float) -> None:
        self.size, self.timeout, self.recycle = size, timeout, recycle
        self._slots = threading.BoundedSemaphore(size + overflow)
        self._idle: deque[tuple[Any, float]] = deque()
        self._lock = threading.Lock()

    def idle(self) -> int:
        return len(self._idle)

    def get(self, connect: Callable[[], Any]) -> tuple[Any, float]:
        """A connection and the time it was opened (``time.monotonic``)."""
        with self._lock:
            while self._idle:
                connection, opened = self._idle.pop()  # the most recently used
                if time.monotonic() - opened < self.recycle:
                    return connection, opened
                self._discard(connection)
        if not self._slots.acquire(timeout=self.timeout):
            raise ConnectionTimeout(f"no database connection free within {self.timeout:g}s")
        try:
            return connect(), time.monotonic()
        except BaseException:
            self._slots.release()
            raise

    def put(self, connection: Any, opened: float) -> None:
        if connection.in_transaction:
            connection.rollback()
        with self._lock:
            if len(self._idle) < self.size and time.monotonic() - opened < self.recycle:
                self._idle.append((connection, opened))
                return
        self._discard(connection)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = list(self._idle), deque()
        for connection, _ in idle:
            self._discard(connection)

    def _discard(self, connection: Any) -> None:
        try:
            connection.close()
        finally:
            self._slots.release()


_settings = get_settings()
_pool = ConnectionPool(
    size=_settings.db_pool_size,
    overflow=_settings.db_max_overflow,
    timeout=_settings.db_pool_timeout,
    recycle=_settings.db_pool_recycle,
)
pooling.count_idle_with(_pool.idle)


class DatabaseWrapper(base.DatabaseWrapper):
    _opened = 0.0

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connect = functools.partial(super().get_new_connection, conn_params)
        with pooling.checkout(timeouts=(ConnectionTimeout,)):
            connection, self._opened = _pool.get(connect)
        return connection

    def _close(self) -> None:
        try:
            _pool.put(self.connection, self._opened)
        finally:
            pooling.checked_in()

    def close_pool(self) -> None:
        _pool.close()
