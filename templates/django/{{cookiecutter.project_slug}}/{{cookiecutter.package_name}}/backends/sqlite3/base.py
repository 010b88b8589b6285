"""Django's SQLite backend, with at most DB_POOL_SIZE + DB_MAX_OVERFLOW
connections open at once in the worker (backends/pooling.py)."""

from __future__ import annotations

import threading
from typing import Any

from django.db.backends.sqlite3 import base

from ...config import get_settings
from .. import pooling

_settings = get_settings()
_slots = threading.BoundedSemaphore(_settings.db_pool_size + _settings.db_max_overflow)


class ConnectionTimeout(TimeoutError):
    """Every connection the worker may open is in use (a 503, like a full pool)."""


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        with pooling.checkout(timeouts=(ConnectionTimeout,)):
            if not _slots.acquire(timeout=_settings.db_pool_timeout):
                raise ConnectionTimeout(
                    f"no database connection free within {_settings.db_pool_timeout:g}s"
                )
            try:
                return super().get_new_connection(conn_params)
            except BaseException:
                _slots.release()
                raise

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]  # Django's hook, not in django-stubs
        finally:
            _slots.release()
            pooling.checked_in()
