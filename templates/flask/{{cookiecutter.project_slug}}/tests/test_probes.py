from __future__ import annotations

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families


def test_liveness(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readiness_checks_the_database(client: FlaskClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.get_json()["checks"]["database"] == {"status": "ok"}


def test_metrics_count_requests_by_route_template(client: FlaskClient) -> None:
    client.get("/")
    client.get("/no/such/page/999999")
    body = client.get("/metrics").get_data(as_text=True)
    families = {family.name: family for family in text_string_to_metric_families(body)}
    counts = [
        sample
        for sample in families["http_server_request_duration_seconds"].samples
        if sample.name.endswith("_count")
    ]
    routes = {sample.labels["http_route"] for sample in counts}
    assert "/" in routes
    assert not any(route.endswith("999999") for route in routes)
