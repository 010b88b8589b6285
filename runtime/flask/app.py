"""What the kit's runtime adds to a Flask application (``init_app``): logging,
tracing, the request pipeline, the error handlers, the service's own routes,
the database, background work, and JSON bodies read as the contract says."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from flask import Flask, Request
from flask.json.provider import DefaultJSONProvider
from werkzeug.routing import IntegerConverter

from . import handlers, middleware, probes, server, tasks
from .config import Settings, get_settings
from .database import Database
from .json_body import is_json_media_type, parse_json
from .logging import configure_logging, get_logger
from .metrics import init_failure_series
from .pipeline import EXEMPT_PATHS
from .refresh import keep_ready_current
from .tracing import configure_tracing

log = get_logger(__name__)


class JsonProvider(DefaultJSONProvider):
    """Bodies are one JSON text as RFC 8259 defines it, in UTF-8 (docs/contract.md,
    section 3): the standard library's parser alone also takes a byte-order mark,
    UTF-16, ``NaN`` and ``Infinity``."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return parse_json(s.encode() if isinstance(s, str) else s)


class AsciiIntegerConverter(IntegerConverter):
    """``<int:...>`` matches ASCII digits only: werkzeug's ``\\d`` takes any Unicode
    digit, so an Arabic-Indic or a fullwidth one and ``1`` would name one item."""

    regex = r"[0-9]+"


class JsonRequest(Request):
    """``request.get_json()``: 415 for a body that is not JSON by its media type
    (Flask's own answer), 400 ``invalid_json`` for one that does not parse."""

    @property
    def is_json(self) -> bool:
        return is_json_media_type(self.content_type)

    def on_json_loading_failed(self, e: ValueError | None) -> NoReturn:
        if e is None:
            super().on_json_loading_failed(e)
        raise handlers.InvalidJson() from e


# Functions whose ``ensure_sync`` answer is kept: views, hooks and handlers are
# a few dozen; a caller that makes a new function per request empties the cache
# now and then rather than growing it.
_SYNC_CACHE_MAX = 1024


def cache_ensure_sync(app: Flask) -> None:
    """Flask asks, for the view and every hook of every request, whether the
    function is a coroutine function (``ensure_sync``, through ``inspect``):
    five times a request here, 3% of the example's read in instructions
    (callgrind). The answer does not change, so it is kept."""
    ensure_sync = app.ensure_sync
    known: dict[Callable[..., Any], Callable[..., Any]] = {}

    def cached(func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return known[func]
        except KeyError:
            if len(known) >= _SYNC_CACHE_MAX:
                known.clear()
            found = known[func] = ensure_sync(func)
            return found
        except TypeError:  # an unhashable callable
            return ensure_sync(func)

    app.ensure_sync = cached  # type: ignore[method-assign]


def routes(app: Flask) -> Iterator[tuple[str, set[str]]]:
    """Each rule's template and the methods it answers; the probes and the
    scrape are not counted."""
    for rule in app.url_map.iter_rules():
        template = middleware.route_template(rule.rule)
        if template not in EXEMPT_PATHS:
            yield template, set(rule.methods or ())


def init_app(app: Flask, settings: Settings | None = None) -> None:
    """Call it in your app factory, before registering your blueprints; ``settings``
    are the environment's (``get_settings()``) unless given."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    configure_tracing(settings)

    # Larger bodies are refused with 413 before they are read.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_body_bytes
    app.json = JsonProvider(app)
    app.request_class = JsonRequest
    app.url_map.converters["int"] = AsciiIntegerConverter
    cache_ensure_sync(app)

    database = Database.from_settings(settings)
    database.init_app(app)
    # Once the worker has the whole application (the blueprints come after this).
    server.on_start(lambda: init_failure_series(routes(app)))
    server.on_start(
        lambda: server.on_exit(keep_ready_current(lambda: probes.readiness_answer(database)))
    )
    # Run last registered first, at worker exit: the background work, then the pool.
    server.on_exit(database.dispose)
    server.on_exit(lambda: tasks.drain(settings.graceful_timeout))

    app.register_blueprint(probes.bp)
    handlers.install(app)
    middleware.install(app, settings)
    log.info("startup complete", service=settings.service_name, version=settings.service_version)
