from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families


def test_liveness(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_checks_the_database(client: TestClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == {"status": "ok"}


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/")
    client.get("/no/such/page/999999")
    body = client.get("/metrics").text
    families = {family.name: family for family in text_string_to_metric_families(body)}
    counts = [
        sample
        for sample in families["http_server_request_duration_seconds"].samples
        if sample.name.endswith("_count")
    ]
    routes = {sample.labels["http_route"] for sample in counts}
    assert "/" in routes
    assert not any(route.endswith("999999") for route in routes)


def test_the_api_document_names_the_errors_of_every_operation(client: TestClient) -> None:
    # The runtime adds the contract's errors to each of your routes' operations.
    document = client.get("/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert {"500", "503"} <= set(operation["responses"]), f"{method} {path}"
