"""gunicorn's settings and hooks, from the environment (README.md, "Configuration").

The project's ``gunicorn.conf.py`` imports everything named in ``__all__``;
`make run`, the Procfile's web process and the container all start gunicorn
with that file, so the service behaves the same everywhere. Settings it
assigns after the import win over these.
"""

from __future__ import annotations

import gc
import importlib
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

from . import build, lifecycle
from .config import PACKAGE, ConfigError, Settings, get_settings
from .logging import configure_logging, get_logger, logging_config

__all__ = [
    "bind",
    "child_exit",
    "control_socket_disable",
    "graceful_timeout",
    "keepalive",
    "logconfig_dict",
    "logger_class",
    "loglevel",
    "on_exit",
    "on_starting",
    "post_fork",
    "post_worker_init",
    "preload_app",
    "proc_name",
    "threads",
    "timeout",
    "worker_class",
    "worker_exit",
    "worker_tmp_dir",
    "workers",
]


def checked_settings(*modules: str) -> Settings:
    """The settings, with ``modules`` imported too (Django's settings read their own
    variables); an invalid value stops the master with one log line, before any
    worker starts."""
    try:
        settings = get_settings()
        for module in modules:
            importlib.import_module(module)
    except ConfigError as error:
        configure_logging()
        get_logger(f"{PACKAGE}.config").error(
            "invalid configuration", variable=error.variable, error=str(error)
        )
        sys.exit(1)
    configure_logging(settings.log_level, settings.log_format)
    return settings


settings = checked_settings()

# Past GRACEFUL_TIMEOUT the workers stop waiting for requests and clean up
# (pool, spans); the master's SIGKILL comes this much later, so it never
# interrupts that clean-up.
SHUTDOWN_MARGIN = 5

bind = [f"0.0.0.0:{settings.port}"]
workers = settings.web_concurrency
worker_class = f"{__name__.rsplit('.', 1)[0]}.server.Worker"
threads = settings.web_threads or 1  # asyncio workers have none to size
graceful_timeout = math.ceil(settings.graceful_timeout) + SHUTDOWN_MARGIN
keepalive = math.ceil(settings.keepalive)
# A worker that has not checked in with the master for this long is replaced.
timeout = 30
proc_name = build.DISTRIBUTION
# Tracing and the database pool are created per worker, after fork.
preload_app = False
# The heartbeat file lives in memory where possible (read-only root filesystems).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# Signals are the control interface; gunicorn's control socket would share
# one default path between every service on the host.
control_socket_disable = True
loglevel = settings.log_level
logconfig_dict = logging_config(settings.log_level, settings.log_format)


class JsonLogger(Logger):  # type: ignore[misc]  # gunicorn has no types
    """gunicorn's own lines go through the JSON handler (``logconfig_dict``);
    its access line is skipped because the service writes a richer one."""

    def access(self, *args: Any, **kwargs: Any) -> None:
        return None


logger_class = JsonLogger

_private_metrics_dir: Path | None = None


def on_starting(server: Any) -> None:
    global _private_metrics_dir
    if settings.web_concurrency > 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # prometheus_client reads this when the workers import it, so it is set
        # here, in the master, before any worker exists. Files of an earlier run
        # would be summed into this one's counts.
        configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        path = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="metrics-"))
        if not configured:
            _private_metrics_dir = path
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
        server.log.info("multiprocess metrics in %s", path)

    # gunicorn has no hook for SIGTERM in the master, and it would close the
    # listener at once. Flip readiness for every worker first, keep serving
    # for DRAIN_DELAY so load balancers notice, then stop as gunicorn does.
    stop = server.handle_term

    def handle_term() -> None:
        lifecycle.begin_draining()
        server.log.info(
            "SIGTERM: draining for %gs before closing the listener", settings.drain_delay
        )
        time.sleep(settings.drain_delay)
        stop()

    server.handle_term = handle_term


def post_fork(server: Any, worker: Any) -> None:
    from .error_tracking import configure_error_tracking
    from .metrics import prepare_scrapes
    from .tracing import configure_tracing

    configure_tracing(settings)
    configure_error_tracking(settings)
    prepare_scrapes()


def post_worker_init(worker: Any) -> None:
    # The application is loaded, and what it is made of lives as long as the
    # worker: the cyclic collector need not walk it again. A full collection
    # walked 70-88k objects of the example services, a 17-45 ms pause for every
    # request in flight; with them frozen, 0.1 ms.
    gc.freeze()


def worker_exit(server: Any, worker: Any) -> None:
    # The worker has finished its requests and its own clean-up (server.py).
    from .error_tracking import flush_error_tracking
    from .tracing import shutdown_tracing

    shutdown_tracing()
    flush_error_tracking()


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    if _private_metrics_dir is not None:
        shutil.rmtree(_private_metrics_dir, ignore_errors=True)
