"""Contract section 6: traces, on SQLite and PostgreSQL and with several workers."""

from __future__ import annotations

import functools
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from kit.metrics import OPENMETRICS, samples
from kit.otlp import OtlpSink, SpanRecord
from kit.postgres import PostgresServer
from kit.project import Service
from tests.conformance.helpers import (
    HEX16,
    HEX32,
    ITEM_ROUTE,
    Traffic,
    access_lines,
    create_item,
    scrape,
    server_pids,
    server_span,
)
from tests.conftest import Boot

pytestmark = pytest.mark.boot


def test_one_server_span_per_request_named_after_the_route(
    service: Service, sink: OtlpSink
) -> None:
    with service.client() as client:
        item = create_item(client, "traced")
        trace_id = uuid.uuid4().hex
        client.get(
            f"/api/items/{item['id']}",
            headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
        )
    span = server_span(sink, trace_id)
    assert span.name == f"GET {ITEM_ROUTE}"
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["http.route"] == ITEM_ROUTE
    assert span.attributes["http.response.status_code"] == 200


def test_traceparent_is_continued(service: Service, sink: OtlpSink) -> None:
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    response = httpx.get(
        service.base_url + "/api/items", headers={"traceparent": f"00-{trace_id}-{parent}-01"}
    )
    assert response.status_code == 200
    span = server_span(sink, trace_id)
    assert span.parent_span_id == parent


def assert_client_spans(sink: OtlpSink, trace_id: str, verb: str, system: str) -> None:
    """The request's statements starting with ``verb`` have CLIENT spans of the
    database ``system``, each below the request's server span."""
    server = server_span(sink, trace_id)
    clients = sink.wait_for(
        lambda s: (
            s.trace_id == trace_id
            and s.kind == "CLIENT"
            and verb
            in str(s.attributes.get("db.statement", s.attributes.get("db.query.text", s.name)))
        )
    )
    by_id = {s.span_id: s for s in sink.snapshot() if s.trace_id == trace_id}
    for span in clients:
        assert span.attributes.get("db.system.name", span.attributes.get("db.system")) == system
        ancestor = span
        while ancestor.parent_span_id and ancestor.span_id != server.span_id:
            ancestor = by_id[ancestor.parent_span_id]
        assert ancestor.span_id == server.span_id


def test_database_statements_have_client_spans(service: Service, sink: OtlpSink) -> None:
    trace_id = uuid.uuid4().hex
    httpx.get(
        service.base_url + "/api/items",
        headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
    )
    assert_client_spans(sink, trace_id, "SELECT", "sqlite")


def test_resource_names_the_service(service: Service, sink: OtlpSink) -> None:
    trace_id = uuid.uuid4().hex
    httpx.get(
        service.base_url + "/api/items",
        headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
    )
    resource = server_span(sink, trace_id).resource
    assert resource["service.name"] == service.project.path.name
    assert resource["service.version"] == "0.1.0"
    assert resource["deployment.environment.name"] == "development"
    assert resource["deployment.environment"] == "development"


def test_unmatched_requests_are_named_by_method_only(service: Service, sink: OtlpSink) -> None:
    trace_id = uuid.uuid4().hex
    httpx.get(
        service.base_url + "/no/such/page",
        headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
    )
    span = server_span(sink, trace_id)
    assert span.name == "GET"
    assert span.attributes["http.response.status_code"] == 404


def test_probes_are_not_traced(service: Service, sink: OtlpSink) -> None:
    trace_ids = [uuid.uuid4().hex for _ in range(3)]
    for path, trace_id in zip(["/healthz", "/ready", "/metrics"], trace_ids, strict=True):
        httpx.get(
            service.base_url + path,
            headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
        )
    marker = uuid.uuid4().hex
    httpx.get(
        service.base_url + "/api/items",
        headers={"traceparent": f"00-{marker}-{uuid.uuid4().hex[:16]}-01"},
    )
    server_span(sink, marker)
    time.sleep(0.3)
    assert not {s.trace_id for s in sink.snapshot() if s.kind == "SERVER"} & set(trace_ids)


def test_sampled_out_requests_keep_their_trace_ids_in_logs(verbose: Traffic) -> None:
    service, ids = verbose
    (access,) = access_lines(service, ids["unsampled"])
    trace_id = access["trace_id"]
    assert HEX32.match(trace_id) and HEX16.match(access["span_id"])
    logged = {line["span"]["trace_id"] for line in service.log_lines() if line["event"] == "span"}
    assert ids["trace_id"] in logged  # spans of the sampled request were written by now
    assert trace_id not in logged
    exemplars = {
        s.exemplar.labels["trace_id"]
        for s in samples(
            scrape(service, OPENMETRICS).text,
            "http_server_request_duration_seconds_bucket",
            openmetrics=True,
        )
        if s.exemplar
    }
    assert ids["trace_id"] in exemplars
    assert trace_id not in exemplars


@pytest.fixture(scope="module")
def pg_service(boot: Boot, postgres: PostgresServer) -> Service:
    """The service on its own database of the session's private PostgreSQL server."""
    return boot(DATABASE_URL=postgres.create_database(f"conformance_{uuid.uuid4().hex[:12]}"))


@pytest.mark.parametrize(("method", "verb"), [("POST", "INSERT"), ("GET", "SELECT")])
def test_postgres_statements_have_client_spans(pg_service: Service, method: str, verb: str) -> None:
    assert pg_service.sink is not None
    trace_id = uuid.uuid4().hex
    response = httpx.request(
        method,
        pg_service.base_url + "/api/items",
        json={"name": "on postgres"} if method == "POST" else None,
        headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
    )
    assert response.status_code in (200, 201), response.text
    assert_client_spans(pg_service.sink, trace_id, verb, "postgresql")


def served_in(span: SpanRecord, batch: frozenset[str]) -> bool:
    return span.kind == "SERVER" and span.trace_id in batch


def test_several_workers_each_export_every_span(two_workers: Service) -> None:
    service = two_workers
    assert service.sink is not None
    workers = server_pids(service.process.pid) - {service.process.pid}
    assert len(workers) == 2

    def fetch(trace_id: str) -> int:
        # A connection per request, so that either worker may accept it.
        return httpx.get(
            service.base_url + "/",
            headers={
                "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
                "Connection": "close",
            },
        ).status_code

    sent: set[str] = set()
    serving: set[int] = set()
    deadline = time.monotonic() + 30
    while serving != workers:
        assert time.monotonic() < deadline, f"spans came from {serving}, workers are {workers}"
        batch = {uuid.uuid4().hex for _ in range(10)}
        with ThreadPoolExecutor(max_workers=5) as pool:
            assert set(pool.map(fetch, batch)) == {200}
        sent |= batch
        spans = service.spans.wait_for(
            functools.partial(served_in, batch=frozenset(batch)), count=len(batch)
        )
        serving |= {int(s.resource["process.pid"]) for s in spans}

    time.sleep(0.3)  # a second export of any span would have arrived by now
    servers = [s for s in service.spans.snapshot() if s.kind == "SERVER" and s.trace_id in sent]
    assert sorted(s.trace_id for s in servers) == sorted(sent)
    assert {int(s.resource["process.pid"]) for s in servers} == workers
