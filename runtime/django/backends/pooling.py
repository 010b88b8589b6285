"""The worker's database connections, pooled and reported as the contract's
pool metrics (docs/contract.md, sections 7 and 10; README.md, "Database").

Each worker has one pool of DB_POOL_SIZE connections that grows to at most
DB_POOL_SIZE + DB_MAX_OVERFLOW, shared by its threads. A request takes a
connection at its first query and gives it back when it ends
(``CONN_MAX_AGE=0``); it waits up to DB_POOL_TIMEOUT for a free one (then
503), and a connection older than DB_POOL_RECYCLE seconds is replaced.

Django pools PostgreSQL connections itself (``OPTIONS["pool"]``, psycopg's
pool), but that pool opens connections in background threads and retries:
with the database down, a request would wait the whole DB_POOL_TIMEOUT for a
connection that cannot come, and count as a pool timeout. This pool opens a
connection in the request's own thread, so a refused connection is a 503 at
once, as with SQLAlchemy's pool; it serves SQLite (which Django does not
pool) as well. The backends (``backends/<engine>/base.py``) take and return
connections here.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from django.db import connections

from .. import metrics
from ..config import get_settings


class ConnectionTimeout(TimeoutError):
    """No connection became free within DB_POOL_TIMEOUT (a 503, like a full pool)."""


class ConnectionPool:
    """Keeps up to ``size`` connections open between requests and opens at most
    ``size + overflow`` at once; a request waits for one to come back, or for
    room to open one, up to ``timeout``.

    ``usable(connection)`` runs before an idle connection is reused, unless it
    came back within ``check_after`` seconds: when it returns False, every
    idle connection is closed (they shared the server that failed) and a new
    one is opened; when it raises, the request fails.
    ``reset(connection)`` runs when a connection comes back and returns
    whether it can be kept; one that cannot closes the idle ones too.
    """

    def __init__(
        self,
        reset: Callable[[Any], bool],
        usable: Callable[[Any], bool] | None = None,
        check_after: float = 0.0,
    ) -> None:
        settings = get_settings()
        self.size, self.timeout = settings.db_pool_size, settings.db_pool_timeout
        self.limit = settings.db_pool_size + settings.db_max_overflow
        self.recycle = settings.db_pool_recycle
        self._reset, self._usable, self._check_after = reset, usable, check_after
        self._available = threading.Condition()
        # (connection, when it was opened, when it came back), most recent last
        self._idle: deque[tuple[Any, float, float]] = deque()
        self._open = 0  # connections open, idle or in use
        self._used = 0

    def get(self, connect: Callable[[], Any]) -> tuple[Any, float]:
        """A connection and the time it was opened (``time.monotonic``)."""
        series = metrics.pool_series()
        pending, waited = series.pending, series.wait_time
        pending.inc()
        started = time.perf_counter()
        try:
            while True:
                try:
                    connection, opened, returned = self._take()
                except ConnectionTimeout:
                    # A wait that ended without a connection is a wait too (contract, section 7).
                    waited.observe(time.perf_counter() - started)
                    raise
                if connection is None:  # room for a new one, in this thread
                    try:
                        connection, opened = connect(), time.monotonic()
                    except BaseException:
                        self._discard(None)
                        raise
                    break
                if self._usable is None or time.monotonic() - returned < self._check_after:
                    break
                try:
                    usable = self._usable(connection)
                except BaseException:
                    self._discard(connection)
                    raise
                if usable:
                    break
                self._discard(connection)
                self.close()
        finally:
            pending.dec()
        waited.observe(time.perf_counter() - started)
        self._count(+1)
        return connection, opened

    def _take(self) -> tuple[Any, float, float]:
        """An idle connection, or ``(None, 0, 0)`` with room reserved for a new one."""
        deadline = time.monotonic() + self.timeout
        with self._available:
            while True:
                while self._idle:
                    connection, opened, returned = self._idle.pop()  # the most recently used
                    if time.monotonic() - opened < self.recycle:
                        return connection, opened, returned
                    self._open -= 1
                    connection.close()
                if self._open < self.limit:
                    self._open += 1
                    return None, 0.0, 0.0
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    metrics.pool_series().timeouts.inc()
                    raise ConnectionTimeout(f"no database connection free within {self.timeout:g}s")
                self._available.wait(remaining)

    def put(self, connection: Any, opened: float) -> None:
        self._count(-1)
        try:
            keep = self._reset(connection)
        except Exception:
            keep = False
        with self._available:
            now = time.monotonic()
            if keep and len(self._idle) < self.size and now - opened < self.recycle:
                self._idle.append((connection, opened, now))
                self._available.notify()
                return
        self._discard(connection)
        if not keep:
            # It died (the server restarted, or went silent): so did the idle
            # ones it shared the server with, unchecked if they came back lately.
            self.close()

    def close(self) -> None:
        """Close the idle connections (the ones in use close when they come back)."""
        with self._available:
            idle, self._idle = list(self._idle), deque()
            self._open -= len(idle)
            self._available.notify_all()
        for connection, *_ in idle:
            connection.close()

    def usage(self) -> tuple[int, int]:
        return self._used, len(self._idle)

    def _discard(self, connection: Any) -> None:
        with self._available:
            self._open -= 1
            self._available.notify()
        if connection is not None:
            connection.close()

    def _count(self, change: int) -> None:
        with self._available:
            self._used += change
        metrics.pool_series().changed()


_pools: list[ConnectionPool] = []


def pool(**hooks: Any) -> ConnectionPool:
    """The worker's pool, created once by the backend in use (``backends/<engine>``)."""
    created = ConnectionPool(**hooks)
    _pools.append(created)
    return created


def publish() -> None:
    """Publish the pool's bounds so the series exist before the first query,
    and its usage from now on."""
    settings = get_settings()
    metrics.init_pool_metrics(settings.db_pool_size, settings.db_max_overflow, _usage)


def _usage() -> tuple[int, int]:
    """The worker's connections, used and idle: one pool, unless databases of
    both engines are configured."""
    used = idle = 0
    for created in _pools:
        in_use, waiting = created.usage()
        used, idle = used + in_use, idle + waiting
    return used, idle


def close_all() -> None:
    """At worker exit: this thread's connections, then the pool the threads shared."""
    connections.close_all()
    for created in _pools:
        created.close()
