"""The runtime in a Flask application of its own: what the service's own tests
cannot set up (a limit of one request, a view that fails)."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from . import runtime_module

app_module, config, database = (runtime_module(name) for name in ("app", "config", "database"))
middleware = runtime_module("middleware")


def application(**environ: str) -> Flask:
    app = Flask(__name__)
    app_module.init_app(
        app,
        config.Settings.from_env(
            {"DATABASE_URL": "sqlite://", "OTEL_TRACES_EXPORTER": "none", **environ}
        ),
    )
    return app


def test_requests_beyond_max_in_flight_are_refused_at_once() -> None:
    app = application(MAX_IN_FLIGHT="1")
    entered, release = threading.Event(), threading.Event()

    @app.get("/test/slow")
    def slow() -> str:
        entered.set()
        release.wait(10)
        return "done"

    first: dict[str, int] = {}
    worker = threading.Thread(
        target=lambda: first.update(status=app.test_client().get("/test/slow").status_code)
    )
    worker.start()
    try:
        assert entered.wait(10)
        refused = app.test_client().get("/test/slow")
        assert refused.status_code == 503
        assert refused.get_json()["error"] == "overloaded"
        assert refused.headers["Retry-After"] == "1"
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        release.set()
        worker.join(10)
    assert first["status"] == 200


def test_a_failing_view_is_a_json_500_and_releases_its_connection() -> None:
    app = application()

    @app.get("/test/fails-after-a-query")
    def fails_after_a_query() -> str:
        database.get_session().execute(text("SELECT 1"))
        raise RuntimeError("boom")

    pool = app.extensions[database.EXTENSION].engine.pool
    assert isinstance(pool, QueuePool)
    response = app.test_client().get("/test/fails-after-a-query")
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_error"
    assert "boom" not in response.get_data(as_text=True)
    assert pool.checkedin() == 1
    assert pool.checkedout() == 0


def test_route_templates_are_written_the_openapi_way() -> None:
    template = middleware.route_template
    assert template("/api/items/<int(min=1, max=9):item_id>") == "/api/items/{item_id}"
    assert template("/a/<x>/b/<path:rest>") == "/a/{x}/b/{rest}"
    assert template("/api/items") == "/api/items"


def test_flask_asks_once_per_function_whether_it_is_a_coroutine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = application()

    @app.get("/test/plain")
    def plain() -> str:
        return "done"

    asked: list[Callable[..., Any]] = []

    def counted(function: Callable[..., Any]) -> bool:
        asked.append(function)
        return inspect.iscoroutinefunction(function)

    # What flask.app imported from inspect, and asks on each ensure_sync.
    monkeypatch.setattr("flask.app.iscoroutinefunction", counted)
    client = app.test_client()
    for _ in range(3):
        response = client.get("/test/plain")
        assert response.status_code == 200
        assert response.get_data(as_text=True) == "done"
    # The view and the runtime's hooks, each asked about at its first request only.
    assert asked.count(plain) == 1
    assert len(asked) >= 4
    assert len(asked) == len({id(function) for function in asked})

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self) -> str:
            return "called"

    unhashable = Unhashable()
    assert app.ensure_sync(unhashable)() == "called"
