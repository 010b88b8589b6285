from __future__ import annotations

from typing import Any

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families


def test_root_names_the_service(client: Client) -> None:
    response = client.get("/")
    assert response.json() == {
        "service": "{{ cookiecutter.project_slug }}",
        "version": "{{ cookiecutter.version }}",
    }


def test_liveness(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert len(response.headers["X-Request-ID"]) == 32


def test_readiness_checks_the_database(client: Client) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == {"status": "ok"}


def test_probes_answer_any_host(client: Client) -> None:
    # Kubelets and Prometheus call pods by IP, which ALLOWED_HOSTS does not list.
    assert client.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code == 200
    assert client.get("/api/items", headers={"Host": "10.1.2.3:8000"}).status_code == 400


def test_hosts_are_checked_against_the_current_allowed_hosts(client: Client, settings: Any) -> None:
    # pytest-django's settings fixture. The check remembers the hosts it
    # accepted, for as long as the settings stay.
    settings.ALLOWED_HOSTS = ["a.example"]
    assert client.get("/", headers={"Host": "a.example"}).status_code == 200
    assert client.get("/", headers={"Host": "a.example"}).status_code == 200
    settings.ALLOWED_HOSTS = ["b.example"]
    assert client.get("/", headers={"Host": "a.example"}).status_code == 400
    assert client.get("/", headers={"Host": "b.example"}).status_code == 200


def test_metrics_count_requests_by_route_template(client: Client) -> None:
    client.get("/")
    client.get("/no/such/page/999999")
    body = client.get("/metrics").content.decode()
    families = {family.name: family for family in text_string_to_metric_families(body)}
    counts = [
        sample
        for sample in families["http_server_request_duration_seconds"].samples
        if sample.name.endswith("_count")
    ]
    routes = {sample.labels["http_route"] for sample in counts}
    assert "/" in routes
    assert not any(route.endswith("999999") for route in routes)
    (maximum,) = families["db_client_connection_max"].samples
    assert maximum.value == 10
