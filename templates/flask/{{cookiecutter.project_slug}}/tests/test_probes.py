from __future__ import annotations

import threading

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.config import Settings


def test_liveness(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readiness_checks_the_database(client: FlaskClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.get_json()["checks"]["database"] == {"status": "ok"}


def test_metrics_count_requests_by_route_template(client: FlaskClient) -> None:
    client.get("/api/items/999999")
    body = client.get("/metrics").get_data(as_text=True)
    families = {family.name: family for family in text_string_to_metric_families(body)}
    counts = [
        sample
        for sample in families["http_server_request_duration_seconds"].samples
        if sample.name.endswith("_count")
    ]
    routes = {sample.labels["http_route"] for sample in counts}
    assert "/api/items/{item_id}" in routes
    assert not any(route.endswith("999999") for route in routes)


def test_requests_beyond_max_in_flight_are_refused_at_once() -> None:
    app = create_app(Settings.from_env({"MAX_IN_FLIGHT": "1", "DATABASE_URL": "sqlite://"}))
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
        refused = app.test_client().get("/api/items")
        assert refused.status_code == 503
        assert refused.get_json()["error"] == "overloaded"
        assert refused.headers["Retry-After"] == "1"
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        release.set()
        worker.join(10)
    assert first["status"] == 200
