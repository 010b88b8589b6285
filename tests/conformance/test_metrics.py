"""Contract section 7: metrics, from one worker and from several."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from kit.metrics import OPENMETRICS, families, samples, total
from kit.otlp import OtlpSink
from kit.project import Service, requests_in_flight
from tests.conformance.helpers import (
    HEX32,
    ITEM_ROUTE,
    create_item,
    scrape,
    server_pids,
    server_span,
)
from tests.conftest import Boot

pytestmark = pytest.mark.boot


DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]


def test_metrics_are_the_contracts(service: Service) -> None:
    httpx.get(service.base_url + "/api/items")
    response = scrape(service)
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = families(response.text)
    expected = {
        "http_server_request_duration_seconds": "histogram",
        "http_server_active_requests": "gauge",
        "db_client_connections": "gauge",
        "db_client_connection_max": "gauge",
        "db_client_connection_pending_requests": "gauge",
        "db_client_connection_timeouts": "counter",
        "db_client_connection_wait_time_seconds": "histogram",
    }
    for name, kind in expected.items():
        assert name in found, name
        assert found[name].type == kind, name
    buckets = sorted(
        {
            float(s.labels["le"])
            for s in samples(response.text, "http_server_request_duration_seconds_bucket")
        }
    )
    assert buckets == [*DURATION_BUCKETS, float("inf")]
    (count, *_) = samples(response.text, "http_server_request_duration_seconds_count")
    assert set(count.labels) == {
        "http_request_method",
        "http_route",
        "http_response_status_code",
        "error_type",
    }
    states = {
        s.labels["db_client_connection_state"]
        for s in samples(response.text, "db_client_connections")
    }
    assert states == {"idle", "used"}
    assert (
        total(response.text, "db_client_connection_max", db_client_connection_pool_name="default")
        == 10
    )


def test_requests_are_counted_by_route_template(service: Service) -> None:
    name = "http_server_request_duration_seconds_count"
    before = scrape(service).text
    with service.client() as client:
        ids = [create_item(client, f"counted {n}")["id"] for n in range(3)]
        for item_id in ids:
            assert client.get(f"/api/items/{item_id}").status_code == 200
        for _ in range(2):
            client.get(f"/no/such/{uuid.uuid4().hex}")
        client.get("/healthz")
        client.get("/ready")
    after = scrape(service).text

    def delta(**labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert (
        delta(http_route=ITEM_ROUTE, http_response_status_code="200", http_request_method="GET")
        == 3
    )
    assert (
        delta(http_route="/api/items", http_response_status_code="201", http_request_method="POST")
        == 3
    )
    assert delta(http_route="", http_response_status_code="404", error_type="") == 2
    routes = {s.labels["http_route"] for s in samples(after, name)}
    assert routes <= {"", "/", "/api/items", ITEM_ROUTE}, routes
    assert not any(str(item_id) in route for route in routes for item_id in ids)


def test_unusual_methods_are_bucketed(service: Service) -> None:
    before = total(
        scrape(service).text,
        "http_server_request_duration_seconds_count",
        http_request_method="_OTHER",
    )
    # A method HTTP parsers accept but the semantic conventions do not list.
    assert httpx.request("PURGE", service.base_url + "/api/items").status_code == 405
    after = total(
        scrape(service).text,
        "http_server_request_duration_seconds_count",
        http_request_method="_OTHER",
    )
    assert after - before == 1


def test_openmetrics_exemplars_lead_to_traces(service: Service, sink: OtlpSink) -> None:
    trace_id = uuid.uuid4().hex
    httpx.get(
        service.base_url + "/api/items",
        headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
    )
    response = scrape(service, OPENMETRICS)
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    exemplars = [
        s.exemplar
        for s in samples(
            response.text, "http_server_request_duration_seconds_bucket", openmetrics=True
        )
        if s.exemplar and s.labels["http_route"] == "/api/items"
    ]
    assert exemplars
    assert trace_id in {e.labels["trace_id"] for e in exemplars}
    for exemplar in exemplars:
        assert set(exemplar.labels) == {"trace_id"}
        assert HEX32.match(exemplar.labels["trace_id"])
    server_span(sink, trace_id)


def test_active_requests_count_what_is_in_flight(service: Service) -> None:
    with requests_in_flight(service, 1) as held:
        during = total(
            scrape(service).text, "http_server_active_requests", http_request_method="POST"
        )
    after = total(scrape(service).text, "http_server_active_requests", http_request_method="POST")
    assert [response.status_code for response in held.responses] == [201]
    assert (during, after) == (1, 0)


def test_several_workers_share_their_metrics(boot: Boot) -> None:
    service = boot(WEB_CONCURRENCY="2")
    name = "http_server_request_duration_seconds_count"
    pools = "db_client_connection_max"
    deadline = time.monotonic() + 30  # until both workers have booted and made their pool
    while total(scrape(service).text, pools) < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    with service.client() as client:
        for _ in range(40):
            assert client.get("/api/items", headers={"Connection": "close"}).status_code == 200
    text = scrape(service).text
    assert total(text, name, http_route="/api/items", http_request_method="GET") == 40
    openmetrics = scrape(service, OPENMETRICS).text
    assert not any(
        s.exemplar
        for s in samples(
            openmetrics, "http_server_request_duration_seconds_bucket", openmetrics=True
        )
    )
    assert total(text, "db_client_connection_max", db_client_connection_pool_name="default") == 20


def test_several_workers_report_runtime_metrics(two_workers: Service) -> None:
    service = two_workers
    with service.client() as client:
        for _ in range(20):
            assert client.get("/api/items", headers={"Connection": "close"}).status_code == 200
    text = scrape(service).text
    expected = server_pids(service.process.pid)
    assert len(expected) == 3  # the master and two workers
    for name in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
    ):
        found = samples(text, name)
        assert {int(s.labels["pid"]) for s in found} == expected, name
        assert all(s.value > 0 for s in found), name
    for name in (
        "python_gc_collections_total",
        "python_gc_objects_collected_total",
        "python_gc_objects_uncollectable_total",
    ):
        assert {s.labels["generation"] for s in samples(text, name)} == {"0", "1", "2"}, name
    assert total(text, "python_gc_collections_total") > 0
    openmetrics = families(scrape(service, OPENMETRICS).text, openmetrics=True)
    assert openmetrics["process_cpu_seconds"].type == "counter"
