from django.apps import AppConfig
from django.core.signals import got_request_exception


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
        from .config import get_settings
        from .items.views import background

        lifecycle.on_worker_exit(pooling.close_all)
        # Registered after the pool, so run before it at exit: work first, then the pool.
        lifecycle.on_worker_exit(lambda: background.drain(get_settings().graceful_timeout))
