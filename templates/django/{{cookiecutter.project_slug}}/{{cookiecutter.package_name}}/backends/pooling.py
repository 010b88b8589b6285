"""The worker's database connections as the contract's pool metrics see them
(docs/contract.md, section 7; README.md, "Database").

Each worker has one pool of DB_POOL_SIZE connections that grows to at most
DB_POOL_SIZE + DB_MAX_OVERFLOW, shared by its threads. A request takes a
connection at its first query and gives it back when it ends
(``CONN_MAX_AGE=0``), and waits up to DB_POOL_TIMEOUT for one (then 503).

PostgreSQL: Django's native psycopg pool (``OPTIONS["pool"]``), which checks
a connection before handing it out (``CONN_HEALTH_CHECKS``) and replaces it
after DB_POOL_RECYCLE seconds (``max_lifetime``).

SQLite: Django has no pool for it, so ``backends/sqlite3`` keeps a small one
with the same bounds.

The backends (``backends/<engine>/base.py``) report each checkout and
check-in here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connections

from .. import metrics
from ..config import get_settings

_lock = threading.Lock()
_used = 0
_idle: Callable[[], int] = lambda: 0  # noqa: E731 - the backend in use tells


def publish_bounds() -> None:
    """Publish the pool's bounds so the series exist before the first query."""
    settings = get_settings()
    metrics.init_pool_metrics(settings.db_pool_size, settings.db_max_overflow)


def count_idle_with(idle: Callable[[], int]) -> None:
    global _idle
    _idle = idle


@contextmanager
def checkout(timeouts: tuple[type[BaseException], ...]) -> Iterator[None]:
    """Wrap getting a connection: pending requests, wait time, timeouts, usage."""
    pool = metrics.POOL_NAME
    pending = metrics.db_client_connection_pending_requests.labels(pool)
    pending.inc()
    started = time.perf_counter()
    try:
        yield
    except timeouts:
        metrics.db_client_connection_timeouts.labels(pool).inc()
        raise
    finally:
        pending.dec()
    metrics.db_client_connection_wait_time.labels(pool).observe(time.perf_counter() - started)
    _count(+1)


def checked_in() -> None:
    _count(-1)


def _count(change: int) -> None:
    global _used
    with _lock:
        _used += change
    publish_usage()


def publish_usage() -> None:
    metrics.set_pool_usage(used=_used, idle=_idle())


def close_all() -> None:
    """At worker exit: this thread's connections, then the pool the threads shared."""
    connections.close_all()
    for alias in connections:
        close_pool = getattr(connections[alias], "close_pool", None)
        if close_pool is not None:
            close_pool()
