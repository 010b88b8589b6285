"""The runtime as a Django app (``INSTALLED_APPS``): wiring that runs once per process."""

from __future__ import annotations

from django.apps import AppConfig
from django.core.signals import got_request_exception
from django.db.backends.signals import connection_created

from . import server, tasks
from .backends import pooling
from .config import get_settings
from .database import trace_connection
from .handlers import log_unhandled_exception
from .metrics import init_failure_series
from .refresh import keep_ready_current


class RuntimeConfig(AppConfig):
    name = __name__.rsplit(".", 1)[0]
    label = "runtime"

    def ready(self) -> None:
        # Imported once the apps are: they import what the apps define.
        from . import probes
        from .middleware import routes

        connection_created.connect(trace_connection, dispatch_uid="trace-statements")
        pooling.publish()
        got_request_exception.connect(log_unhandled_exception, dispatch_uid="log-unhandled")
        # In a serving worker, once it has loaded the application.
        server.on_start(lambda: init_failure_series(routes()))
        server.on_start(lambda: server.on_exit(keep_ready_current(probes.readiness_answer)))
        # Run last registered first, at worker exit: the background work, then the pool.
        server.on_exit(pooling.close_all)
        server.on_exit(lambda: tasks.drain(get_settings().graceful_timeout))
