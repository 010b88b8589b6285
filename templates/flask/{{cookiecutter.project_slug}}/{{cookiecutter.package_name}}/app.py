"""The Flask application factory: the service's blueprints, on the kit's runtime
(``runtime/``), which brings the probes, the metrics, the traces, the logs and
the contract's errors to every route."""

from __future__ import annotations

from flask import Flask

from . import runtime
from .api import items


def create_app() -> Flask:
    """A new application; gunicorn makes one in each worker, after fork (wsgi.py)."""
    app = Flask(__name__)
    runtime.init_app(app)
    app.register_blueprint(items.bp)
    return app
