"""Contract section 7: metrics, from one worker and from several."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from kit.metrics import OPENMETRICS, families, samples, total, value
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
        "http_server_active_requests_limit": "gauge",
        "service_ready": "gauge",
        "service_build_info": "gauge",
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
    # One process: no pid label, and the load-shedding limit is the worker's.
    assert not any("pid" in s.labels for s in samples(response.text, "db_client_connection_max"))
    assert total(response.text, "http_server_active_requests_limit") > 0


METHOD_LABELS = ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")


def test_failure_series_exist_before_any_failure(service: Service) -> None:
    """A series born at 1 is read by rate() as 0: every 5xx a request can end in
    is a series from the worker's start, so the first one counts."""
    keys = ("http_request_method", "http_route", "http_response_status_code", "error_type")
    found = {
        tuple(s.labels[key] for key in keys)
        for s in samples(scrape(service).text, "http_server_request_duration_seconds_count")
    }
    for method in (*METHOD_LABELS, "_OTHER"):  # refused (shed) or failed before routing
        assert (method, "", "503", "overloaded") in found, method
        assert (method, "", "500", "internal_error") in found, method
    for method, route in (
        ("GET", "/"),
        ("GET", "/api/items"),
        ("HEAD", "/api/items"),
        ("POST", "/api/items"),
        ("GET", ITEM_ROUTE),
    ):
        assert (method, route, "500", "internal_error") in found, (method, route)
        assert (method, route, "503", "database_unavailable") in found, (method, route)
    routes = {route for _, route, _, _ in found}
    assert not routes & {"/healthz", "/ready", "/metrics"}  # never counted, never created


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
    assert {"", "/", "/api/items", ITEM_ROUTE} <= routes, routes
    # Templates only: no id, no unknown path (their failure series are made
    # from the route templates at start, so the framework's own count too).
    segments = {segment for route in routes for segment in route.split("/")}
    assert not segments & {str(item_id) for item_id in ids}, routes
    assert not any("no/such" in route for route in routes), routes


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


def test_a_pool_wait_that_times_out_is_observed(boot: Boot) -> None:
    pool_timeout = 0.5
    service = boot(DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT=str(pool_timeout))
    # Nothing calls /ready here: the service checks itself from its start.
    deadline = time.monotonic() + 5
    while not samples(scrape(service).text, "service_ready") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert value(scrape(service).text, "service_ready") == 1
    wait = "db_client_connection_wait_time_seconds"
    before = scrape(service).text
    # The one connection waits on the database's lock; the next request on the pool.
    with requests_in_flight(service, 1) as held, service.client() as client:
        refused = client.get("/api/items")
    assert refused.status_code == 503 and refused.json()["error"] == "database_unavailable"
    assert [response.status_code for response in held.responses] == [201]
    after = scrape(service).text

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    timeouts = delta("db_client_connection_timeouts_total")
    assert timeouts >= 1
    # Each timed-out wait is in the histogram, as long as it lasted.
    assert delta(f"{wait}_count") >= timeouts + 1  # and the held request's checkout
    assert delta(f"{wait}_sum") >= 0.9 * pool_timeout * timeouts
    assert delta(f"{wait}_bucket", le="0.25") < delta(f"{wait}_count")


def test_several_workers_share_their_metrics(boot: Boot) -> None:
    service = boot(WEB_CONCURRENCY="2", MAX_IN_FLIGHT="3")
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
    # The pool is each worker's own: one series per worker, by pid.
    bounds = samples(text, "db_client_connection_max")
    assert len({s.labels["pid"] for s in bounds}) == 2 and {s.value for s in bounds} == {10}
    for name in ("db_client_connections", "db_client_connection_pending_requests"):
        assert {s.labels.get("pid") for s in samples(text, name)} == {
            s.labels["pid"] for s in bounds
        }, name
    # In flight and its limit are summed over the workers: 2 x MAX_IN_FLIGHT.
    assert value(text, "http_server_active_requests_limit") == 6


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
