from typing import Any

import structlog
from django.apps import AppConfig
from django.core.signals import got_request_exception, request_finished


def _forget_request(sender: Any, **kwargs: Any) -> None:
    # Once the response is sent, the server's own lines (a closed connection,
    # the next keep-alive wait) belong to no request.
    structlog.contextvars.clear_contextvars()


class ServiceConfig(AppConfig):
    """The project package as an app: wiring that runs once per process."""

    name = "{{ cookiecutter.package_name }}"

    def ready(self) -> None:
        from . import lifecycle, telemetry
        from .backends import pooling
        from .errors import log_unhandled_exception

        telemetry.instrument()
        pooling.publish_bounds()
        got_request_exception.connect(log_unhandled_exception, dispatch_uid="log-unhandled")
        request_finished.connect(_forget_request, dispatch_uid="forget-request")
        from .config import get_settings
        from .items.views import background

        lifecycle.on_worker_exit(pooling.close_all)
        # Registered after the pool, so run before it at exit: work first, then the pool.
        lifecycle.on_worker_exit(lambda: background.drain(get_settings().graceful_timeout))
