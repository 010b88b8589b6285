"""Django's PostgreSQL backend, reporting its psycopg pool's checkouts
(backends/pooling.py); the pool itself is Django's (``OPTIONS["pool"]``)."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base
from psycopg_pool import PoolTimeout

from .. import pooling


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        with pooling.checkout(timeouts=(PoolTimeout,)):
            return super().get_new_connection(conn_params)

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]  # Django's hook, not in django-stubs
        finally:
            pooling.checked_in()


def _idle_connections() -> int:
    pools: dict[str, Any] = getattr(base.DatabaseWrapper, "_connection_pools", {})
    pool = pools.get("default")
    return int(pool.get_stats().get("pool_available", 0)) if pool is not None else 0


pooling.count_idle_with(_idle_connections)
