"""The Flask application factory: blueprints, database, error handlers, telemetry."""

from __future__ import annotations

from flask import Flask

from . import __version__, lifecycle
from .chunked import ChunkedBody
from .config import SERVICE_SLUG, Settings, get_settings
from .db import Database
from .errors import register_error_handlers
from .items import TASKS
from .items import bp as items_bp
from .logging import configure_logging, get_logger
from .probes import bp as probes_bp
from .request_context import RequestContextMiddleware
from .tasks import BackgroundTasks
from .telemetry import RequestTelemetry
from .tracing import configure_tracing

log = get_logger(__name__)


def about() -> dict[str, str]:
    """What is running here: the cheapest real request, for clients and benchmarks."""
    return {"service": SERVICE_SLUG, "version": __version__}


def create_app(settings: Settings | None = None) -> Flask:
    """A new application; gunicorn calls this once in each worker, after fork."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    configure_tracing(settings)

    app = Flask(__name__)
    # Larger bodies are refused with 413 before they are read.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_body_bytes
    app.wsgi_app = ChunkedBody(app.wsgi_app, settings.max_request_body_bytes)  # type: ignore[method-assign]

    database = Database.from_settings(settings)
    database.init_app(app)
    lifecycle.on_worker_exit(database.dispose)
    # Registered after the pool, so run before it at exit: work first, then the pool.
    background = BackgroundTasks()
    app.extensions[TASKS] = background
    lifecycle.on_worker_exit(lambda: background.drain(settings.graceful_timeout))

    app.register_blueprint(probes_bp)
    app.register_blueprint(items_bp)
    app.add_url_rule("/", view_func=about)
    register_error_handlers(app)
    RequestTelemetry(settings).init_app(app)
    # Outermost: the request id exists before anything below logs.
    app.wsgi_app = RequestContextMiddleware(app.wsgi_app)  # type: ignore[method-assign]

    log.info("startup complete", service=settings.service_name, version=__version__)
    return app
