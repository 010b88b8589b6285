"""docs/contract.md, checked from the outside against every framework's service.

Each test talks to a real gunicorn started from the generated Procfile and
asserts on what it answered, logged, exported and exposed. Section numbers
refer to the contract.
"""

from __future__ import annotations

import ast
import json
import re
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from kit.http import post_chunked_then_get, slow_post_json
from kit.metrics import OPENMETRICS, families, samples, total
from kit.otlp import OtlpSink, SpanRecord
from kit.postgres import PostgresServer
from kit.project import Project, Service, procfile
from tests.conftest import Boot

pytestmark = pytest.mark.boot

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
LEVELS = {"debug", "info", "warning", "error", "critical"}
ITEM_ROUTE = "/api/items/{item_id}"
DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]


def rid() -> str:
    """A fresh, valid request id, to find a request's traces in logs and spans."""
    return "t-" + uuid.uuid4().hex


def access_lines(service: Service, request_id: str, count: int = 1) -> list[dict[str, Any]]:
    return service.wait_for_log(
        lambda r: (
            r.get("request_id") == request_id
            and r.get("event") == "request"
            and str(r.get("logger", "")).endswith(".access")
        ),
        count=count,
    )


def server_span(sink: OtlpSink, trace_id: str) -> SpanRecord:
    (span,) = sink.wait_for(lambda s: s.trace_id == trace_id and s.kind == "SERVER")
    return span


def create_item(client: httpx.Client, name: str) -> dict[str, Any]:
    response = client.post("/api/items", json={"name": name})
    assert response.status_code == 201, response.text
    item: dict[str, Any] = response.json()
    return item


# --- 1. Project and processes ----------------------------------------------------


def test_procfile_runs_gunicorn_with_its_config_and_no_reloader(project: Project) -> None:
    processes = procfile(project.path)
    assert processes["web"].startswith("gunicorn ")
    assert "--config gunicorn.conf.py" in processes["web"]
    assert "reload" not in processes["web"]
    assert processes["release"]


def test_release_prepares_the_database_and_can_run_twice(project: Project, tmp_path: Path) -> None:
    database = tmp_path / "release.sqlite3"
    project.release(DATABASE_URL=f"sqlite:///{database}")
    project.release(DATABASE_URL=f"sqlite:///{database}")
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "items" in tables


def test_listens_on_port_on_all_interfaces(service: Service) -> None:
    listening = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A":  # LISTEN
            address, port = local.split(":")
            listening.add((address, int(port, 16)))
    assert ("00000000", service.port) in listening


# --- 3. HTTP surface ---------------------------------------------------------------


def test_liveness_answers_ok(service: Service) -> None:
    response = httpx.get(service.base_url + "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_checks_the_database(service: Service) -> None:
    response = httpx.get(service.base_url + "/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert samples(scrape(service).text, "service_ready")[0].value == 1


def test_root_names_the_service_and_is_counted(service: Service) -> None:
    request_id = rid()
    response = httpx.get(service.base_url + "/", headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.json() == {"service": service.project.path.name, "version": "0.1.0"}
    (line,) = access_lines(service, request_id)
    assert (line["http_route"], line["http_status"]) == ("/", 200)
    assert (
        total(scrape(service).text, "http_server_request_duration_seconds_count", http_route="/")
        >= 1
    )


def test_items_can_be_created_listed_and_fetched(service: Service) -> None:
    with service.client() as client:
        name = f"café ☕ {uuid.uuid4().hex}"
        item = create_item(client, name)
        assert item["name"] == name
        assert isinstance(item["id"], int)
        fetched = client.get(f"/api/items/{item['id']}")
        assert fetched.status_code == 200
        assert fetched.json() == item
        listing = client.get("/api/items")
        assert listing.status_code == 200
        ids = [entry["id"] for entry in listing.json()]
        assert ids == sorted(ids)
        assert item in listing.json()


def test_a_new_item_is_counted_in_the_background(service: Service) -> None:
    request_id = rid()
    response = httpx.post(
        service.base_url + "/api/items",
        json={"name": "counted"},
        headers={"X-Request-ID": request_id},
    )
    assert response.status_code == 201
    (line,) = service.wait_for_log(
        lambda r: r.get("event") == "items stored" and r.get("request_id") == request_id
    )
    assert isinstance(line["total"], int) and line["total"] >= 1


@pytest.mark.parametrize("item_id", ["987654321", "abc", "-1", "0", "1.5", "99999999999999999999"])
def test_ids_that_name_no_item_are_404(service: Service, item_id: str) -> None:
    response = httpx.get(f"{service.base_url}/api/items/{item_id}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "not_found"


def test_unknown_url_is_a_json_404(service: Service) -> None:
    response = httpx.get(service.base_url + "/no/such/page")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_wrong_method_is_a_json_405_with_allow(service: Service) -> None:
    response = httpx.delete(service.base_url + "/api/items")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed


# Not one JSON text in UTF-8 as RFC 8259 defines it (contract, section 3).
@pytest.mark.parametrize(
    "body",
    [
        b'{"name": ',
        b"not json",
        b"\xff\xfe\x00",
        b'{"name": "x"} trailing',
        b"",
        b'{"name": NaN}',
        b'{"name": Infinity}',
        b'{"name": -Infinity}',
        b'\xef\xbb\xbf{"name": "byte-order mark"}',
        '{"name": "utf-16"}'.encode("utf-16"),
        b'{"name": "\xc3\x28"}',  # invalid UTF-8 inside a string
        b"[" * 100_000,  # unterminated, and deeper than any parser recurses
    ],
    ids=[
        "truncated",
        "text",
        "binary",
        "trailing",
        "empty",
        "nan",
        "infinity",
        "minus-infinity",
        "bom",
        "utf-16",
        "invalid-utf-8",
        "deep",
    ],
)
def test_malformed_json_is_a_400(service: Service, body: bytes) -> None:
    response = httpx.post(
        service.base_url + "/api/items", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_json"


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"]
)
def test_a_body_that_is_not_json_by_its_media_type_is_a_415(
    service: Service, content_type: str | None
) -> None:
    request_id = rid()
    headers = {"X-Request-ID": request_id}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = httpx.post(
        service.base_url + "/api/items", content=b'{"name": "typed"}', headers=headers
    )
    assert response.status_code == 415, response.text
    assert response.json() == {
        "error": "unsupported_media_type",
        "message": "Unsupported media type.",
        "request_id": request_id,
    }


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/item+json"]
)
def test_any_json_media_type_is_taken(service: Service, content_type: str) -> None:
    response = httpx.post(
        service.base_url + "/api/items",
        content=b'{"name": "typed"}',
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "typed"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"name": ""},
        {"name": 5},
        {"name": None},
        {"name": "x" * 201},
        {"name": "a\u0000b"},
        {"name": "tab\there"},
        b'{"name": "\\ud800"}',  # valid JSON, but no valid Unicode string
        ["name"],
        "name",
        7,
    ],
    ids=[
        "missing",
        "empty",
        "number",
        "null",
        "too-long",
        "nul",
        "control",
        "lone-surrogate",
        "list",
        "string",
        "integer",
    ],
)
def test_invalid_bodies_are_a_422(service: Service, payload: Any) -> None:
    if isinstance(payload, bytes):
        response = httpx.post(
            service.base_url + "/api/items",
            content=payload,
            headers={"Content-Type": "application/json"},
        )
    else:
        response = httpx.post(service.base_url + "/api/items", json=payload)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["details"]


def test_longest_valid_name_is_accepted(service: Service) -> None:
    response = httpx.post(service.base_url + "/api/items", json={"name": "é" * 200})
    assert response.status_code == 201


def test_oversized_body_is_a_413(service: Service) -> None:
    payload = b'{"name": "' + b"x" * (1024 * 1024 + 1) + b'"}'
    response = httpx.post(
        service.base_url + "/api/items",
        content=payload,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_a_chunked_body_is_read_like_any_other(service: Service) -> None:
    name = f"sent in chunks {rid()}"
    body = json.dumps({"name": name}).encode()
    exchange = post_chunked_then_get(service.port, "/api/items", body, "/api/items", chunk_size=7)
    assert exchange.first.status == 201, exchange.first.body
    assert exchange.first.json()["name"] == name
    assert not exchange.closed and exchange.failure is None
    assert exchange.second is not None and exchange.second.status == 200
    assert name in [item["name"] for item in exchange.second.json()]


def test_a_chunked_body_over_the_limit_is_a_413_and_leaves_no_broken_connection(
    service: Service,
) -> None:
    # Twice the limit: more than any server drains on its own before it gives up.
    body = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    exchange = post_chunked_then_get(service.port, "/api/items", body, "/api/items")
    assert exchange.first.status == 413
    assert exchange.first.json()["error"] == "payload_too_large"
    if not exchange.closed:
        assert exchange.failure is None
        assert exchange.second is not None and exchange.second.status == 200


# --- 4. Request ids ----------------------------------------------------------------


@pytest.mark.parametrize("value", ["a", "A.b_c-1", "x" * 64, "0af7651916cd43dd8448eb211c80319c"])
def test_safe_request_ids_are_kept(service: Service, value: str) -> None:
    response = httpx.get(service.base_url + "/api/items", headers={"X-Request-ID": value})
    assert response.headers["x-request-id"] == value
    (line,) = access_lines(service, value)
    assert line["http_path"] == "/api/items"


@pytest.mark.parametrize(
    "value",
    ["x" * 65, "has space", "semi;colon", "ünïcode", "<script>", "a/b", "{jndi:ldap}", ""],
)
def test_unsafe_request_ids_are_replaced_and_never_logged(service: Service, value: str) -> None:
    # Sent as raw bytes: HTTP allows any octet in a header value.
    response = httpx.get(
        service.base_url + "/api/items/987654321",
        headers={"X-Request-ID": value.encode("utf-8")},
    )
    assert response.status_code == 404
    generated = response.headers["x-request-id"]
    assert generated != value
    assert HEX32.match(generated)
    assert response.json()["request_id"] == generated
    access_lines(service, generated)
    if len(value) > 3:
        assert value not in service.stdout_text()
        assert value.encode("utf-8") not in (service.workdir / "stdout.log").read_bytes()


def test_every_response_carries_a_request_id(service: Service) -> None:
    with service.client() as client:
        responses = [
            client.get("/healthz"),
            client.get("/ready"),
            client.get("/metrics"),
            client.get("/api/items"),
            client.post("/api/items", json={"name": "request id"}),
            client.post("/api/items", json={}),
            client.post("/api/items", content=b"{", headers={"Content-Type": "application/json"}),
            client.post(
                "/api/items",
                content=b'{"name": "' + b"x" * (1024 * 1024) + b'"}',
                headers={"Content-Type": "application/json"},
            ),
            client.get("/no/such/page"),
            client.delete("/api/items"),
        ]
    for response in responses:
        assert HEX32.match(response.headers.get("x-request-id", "")), response.request.url
    errors = {r.status_code: r for r in responses if r.status_code >= 400}
    assert set(errors) == {400, 404, 405, 413, 422}
    for response in errors.values():
        assert response.json()["request_id"] == response.headers["x-request-id"]


# --- 5. Logs -----------------------------------------------------------------------


def test_every_line_is_a_json_object_with_the_required_keys(service: Service) -> None:
    with service.client() as client:
        client.get("/api/items")
        client.get("/no/such/page")
    lines = service.log_lines()
    assert len(lines) > 3
    for line in lines:
        assert {"timestamp", "level", "logger", "event"} <= line.keys(), line
        assert ISO_UTC.match(line["timestamp"]), line
        assert line["level"] in LEVELS, line
    assert service.stderr_text() == ""


def test_every_line_inside_a_request_has_its_request_id(service: Service) -> None:
    # A line with a trace id was written while a span was active: inside a
    # request. Unsafe ids are replaced, which is no reason for a line without one.
    replaced = []
    with service.client() as client:
        for value in ["has space", "x" * 65, "ünïcode", "a/b"]:
            response = client.get("/api/items", headers={"X-Request-ID": value.encode()})
            replaced.append(response.headers["x-request-id"])
        create_item(client, "inside a request")
        client.get("/no/such/page", headers={"X-Request-ID": b"bad id"})
        client.post("/api/items", content=b"{", headers={"Content-Type": "application/json"})
    for request_id in replaced:
        access_lines(service, request_id)
    inside = [line for line in service.log_lines() if "trace_id" in line]
    assert len(inside) >= len(replaced)
    for line in inside:
        assert line.get("request_id"), line


def test_server_lines_are_json_too(service: Service) -> None:
    loggers = {line["logger"] for line in service.log_lines()}
    assert "gunicorn.error" in loggers


def test_one_access_line_per_request(service: Service) -> None:
    request_id = rid()
    with service.client(headers={"X-Request-ID": request_id}) as client:
        item = create_item(client, "logged")
        client.get(f"/api/items/{item['id']}")
    first, second = access_lines(service, request_id, count=2)
    time.sleep(0.3)
    assert (
        len(
            [
                r
                for r in service.log_lines()
                if r.get("request_id") == request_id and r.get("event") == "request"
            ]
        )
        == 2
    )
    assert (first["http_method"], first["http_route"], first["http_status"]) == (
        "POST",
        "/api/items",
        201,
    )
    assert second["http_route"] == ITEM_ROUTE
    assert second["http_path"] == f"/api/items/{item['id']}"
    assert second["http_status"] == 200
    for line in (first, second):
        assert isinstance(line["duration_ms"], float)
        assert 0 < line["duration_ms"] < 10_000
        assert HEX32.match(line["trace_id"])
        assert HEX16.match(line["span_id"])


def test_unmatched_requests_log_an_empty_route(service: Service) -> None:
    request_id = rid()
    httpx.get(service.base_url + "/no/such/page", headers={"X-Request-ID": request_id})
    (line,) = access_lines(service, request_id)
    assert line["http_route"] == ""
    assert line["http_status"] == 404


def test_probes_and_scrapes_write_no_access_line(service: Service) -> None:
    ids = [rid() for _ in range(3)]
    for path, request_id in zip(["/healthz", "/ready", "/metrics"], ids, strict=True):
        httpx.get(service.base_url + path, headers={"X-Request-ID": request_id})
    marker = rid()
    httpx.get(service.base_url + "/api/items", headers={"X-Request-ID": marker})
    access_lines(service, marker)  # written after the probes' would have been
    logged = {line.get("request_id") for line in service.log_lines()}
    assert not logged & set(ids)


def test_access_line_points_at_the_server_span(service: Service, sink: OtlpSink) -> None:
    request_id = rid()
    httpx.get(service.base_url + "/api/items", headers={"X-Request-ID": request_id})
    (line,) = access_lines(service, request_id)
    span = server_span(sink, line["trace_id"])
    assert span.span_id == line["span_id"]


def test_authorization_and_cookies_are_never_logged(service: Service) -> None:
    secret = "s3cr3t" + uuid.uuid4().hex
    headers = {
        "Authorization": f"Bearer {secret}-auth",
        "Cookie": f"session={secret}-cookie",
        "X-Request-ID": rid(),
    }
    with service.client(headers=headers) as client:
        client.get("/api/items")
        client.post("/api/items", json={"nope": True})
        client.post("/api/items", content=b"{", headers={"Content-Type": "application/json"})
        client.get("/no/such/page")
    access_lines(service, headers["X-Request-ID"], count=4)
    assert secret not in service.stdout_text()
    assert secret not in service.stderr_text()


# --- 6. Traces ---------------------------------------------------------------------


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


# --- 7. Metrics --------------------------------------------------------------------


def scrape(service: Service, accept: str | None = None) -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    response = httpx.get(service.base_url + "/metrics", headers=headers)
    assert response.status_code == 200
    return response


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
    result: dict[str, Any] = {}
    upload = threading.Thread(
        target=lambda: result.update(
            response=slow_post_json(service.port, "/api/items", {"name": "slow"}, seconds=1.5)
        )
    )
    upload.start()
    time.sleep(0.6)
    during = total(scrape(service).text, "http_server_active_requests", http_request_method="POST")
    upload.join()
    after = total(scrape(service).text, "http_server_active_requests", http_request_method="POST")
    assert result["response"].status == 201
    assert (during, after) == (1, 0)


# --- 3, 5, 6, 7 under faults ---------------------------------------------------------------


def test_an_unhandled_exception_is_a_json_500_logged_once(boot: Boot, tmp_path: Path) -> None:
    service = boot()
    request_id = rid()
    trace_id = uuid.uuid4().hex
    with service.items_table_dropped():
        response = httpx.get(
            service.base_url + "/api/items",
            headers={
                "X-Request-ID": request_id,
                "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
            },
        )
        # The process survived.
        assert httpx.get(service.base_url + "/healthz").status_code == 200
    assert response.status_code == 500
    assert response.headers["x-request-id"] == request_id
    assert response.json() == {
        "error": "internal_error",
        "message": "Internal server error.",
        "request_id": request_id,
    }
    assert "Traceback" not in response.text and "items" not in response.text

    (access,) = access_lines(service, request_id)
    assert access["http_status"] == 500
    errors = [
        line
        for line in service.log_lines()
        if line.get("request_id") == request_id and line["level"] == "error"
    ]
    assert len(errors) == 1, errors
    assert "Traceback" in errors[0]["exception"]
    assert errors[0]["trace_id"] == trace_id

    span = server_span(service.sink, trace_id)
    assert span.status == "ERROR"
    assert span.attributes["http.response.status_code"] == 500
    assert any(name == "exception" for name, _ in span.events)

    metrics = scrape(service).text
    assert (
        total(
            metrics,
            "http_server_request_duration_seconds_count",
            http_route="/api/items",
            http_response_status_code="500",
            error_type="internal_error",
        )
        == 1
    )

    # It recovers once the schema is back.
    assert httpx.get(service.base_url + "/api/items").status_code == 200
    assert service.stderr_text() == ""


def test_an_unreachable_database_is_a_fast_503(boot: Boot, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "db.sqlite3"
    service = boot(release=False, DATABASE_URL=f"sqlite:///{missing}")
    assert httpx.get(service.base_url + "/healthz").status_code == 200

    assert not samples(scrape(service).text, "service_ready")  # unknown before any check
    ready = httpx.get(service.base_url + "/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["checks"]["database"]["status"] == "error"
    assert samples(scrape(service).text, "service_ready")[0].value == 0

    started = time.monotonic()
    response = httpx.get(service.base_url + "/api/items")
    assert time.monotonic() - started < 3 + 1
    assert response.status_code == 503
    assert response.json()["error"] == "database_unavailable"
    assert response.json()["message"] == "The database is unavailable; try again shortly."
    assert response.headers["retry-after"] == "1"
    assert HEX32.match(response.headers.get("x-request-id", ""))
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert (
        total(
            scrape(service).text,
            "http_server_request_duration_seconds_count",
            http_response_status_code="503",
            error_type="database_unavailable",
        )
        == 1
    )


# --- 2, 8. Settings and lifecycle ---------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "others"),
    [
        ("DB_POOL_SIZE", "lots", {}),
        ("LOG_LEVEL", "loud", {}),
        ("GRACEFUL_TIMEOUT", "-1", {}),
        ("DATABASE_URL", "mysql://db/x", {}),
        ("OTEL_TRACES_EXPORTER", "bogus", {}),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "bogus", {}),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json", {}),
        # The project is installed without the grpc extra.
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", {}),
        ("OTEL_TRACES_SAMPLER", "sometimes", {}),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5", {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"}),
        ("OTEL_SDK_DISABLED", "yes", {}),
    ],
)
def test_an_invalid_setting_stops_the_service_with_one_clear_line(
    project: Project, variable: str, value: str, others: dict[str, str]
) -> None:
    result = project.run(procfile(project.path)["web"], timeout=60, **others, **{variable: value})
    assert result.returncode == 1
    assert result.stderr == ""
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert record["level"] == "error"
    assert record["variable"] == variable
    assert value in record["error"]


ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _reads_environment(call: ast.Call) -> bool:
    """``os.environ.get``/``setdefault``/``pop``, ``os.getenv``, the config reader's
    methods (``env.integer("PORT", ...)``), Django settings' ``_env`` and ``_flag``,
    and ``ConfigError``, which names the variable it rejects."""
    func = call.func
    if isinstance(func, ast.Attribute):
        owner = ast.unparse(func.value)
        return (
            (owner == "os.environ" and func.attr in {"get", "setdefault", "pop"})
            or (owner == "os" and func.attr == "getenv")
            or owner == "env"
        )
    return isinstance(func, ast.Name) and func.id in {"getenv", "_env", "_flag", "ConfigError"}


def variables_read(project: Path) -> set[str]:
    """Every environment variable the service's own code reads (its tests excepted)."""
    names: set[str] = set()
    for path in project.rglob("*.py"):
        if {".venv", "tests"} & set(path.relative_to(project).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            keys: list[ast.AST] = []
            if isinstance(node, ast.Call) and node.args and _reads_environment(node):
                keys = [node.args[0]]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                keys = [node.slice]
            for key in keys:
                names |= {
                    constant.value
                    for constant in ast.walk(key)
                    if isinstance(constant, ast.Constant)
                    and isinstance(constant.value, str)
                    and ENV_NAME.match(constant.value)
                }
    return names


def configuration_table(readme: str) -> set[str]:
    """The variables named in the first column of the README's configuration table."""
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("|"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1]))
    return names


def test_the_readme_documents_every_variable_the_service_reads(project: Project) -> None:
    read = variables_read(project.path)
    # Reads through the config reader and os.environ.
    assert {"PORT", "DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR"} <= read
    documented = configuration_table((project.path / "README.md").read_text())
    assert read - documented == set()
    # Nor does it document one it ignores, but the SDK's own OTEL_* variables.
    assert {name for name in documented if not name.startswith("OTEL_")} - read == set()


def test_otel_variables_configure_tracing(boot: Boot) -> None:
    service = boot(OTEL_SERVICE_NAME="renamed-service", OTEL_RESOURCE_ATTRIBUTES="team=core")
    trace_id = uuid.uuid4().hex
    httpx.get(
        service.base_url + "/api/items",
        headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
    )
    resource = server_span(service.sink, trace_id).resource
    assert resource["service.name"] == "renamed-service"
    assert resource["team"] == "core"


def test_tracing_can_be_switched_off(boot: Boot) -> None:
    service = boot(OTEL_SDK_DISABLED="true")
    request_id = rid()
    with service.client(headers={"X-Request-ID": request_id}) as client:
        assert client.get("/api/items").status_code == 200
        create_item(client, "untraced")
        assert client.get("/ready").status_code == 200
    lines = access_lines(service, request_id, count=2)
    assert not any("trace_id" in line for line in lines)
    # Everything else keeps working: background work, metrics, readiness.
    service.wait_for_log(
        lambda r: r.get("event") == "items stored" and r.get("request_id") == request_id
    )
    metrics = scrape(service).text
    assert (
        total(metrics, "http_server_request_duration_seconds_count", http_route="/api/items") == 2
    )
    assert samples(metrics, "service_ready")[0].value == 1
    time.sleep(0.5)
    assert service.sink.requests == 0


class Traffic(NamedTuple):
    """A service with settings of its own, and the requests a fixture sent it."""

    service: Service
    request_ids: dict[str, str]


@pytest.fixture(scope="session")
def quiet(boot: Boot) -> Traffic:
    """Spans made but exported nowhere; only warnings and errors logged."""
    service = boot(OTEL_TRACES_EXPORTER="none", LOG_LEVEL="warning")
    ids = {"served": rid(), "created": rid(), "failed": rid()}
    with service.client() as client:
        assert client.get("/api/items", headers={"X-Request-ID": ids["served"]}).status_code == 200
        created = client.post(
            "/api/items", json={"name": "quiet"}, headers={"X-Request-ID": ids["created"]}
        )
        assert created.status_code == 201
        with service.items_table_dropped():
            failed = client.get("/api/items", headers={"X-Request-ID": ids["failed"]})
        assert failed.status_code == 500
    service.wait_for_log(lambda r: r.get("request_id") == ids["failed"] and r["level"] == "error")
    return Traffic(service, ids)


def test_exporter_none_makes_spans_but_exports_none(quiet: Traffic) -> None:
    (error,) = [
        line
        for line in quiet.service.log_lines()
        if line.get("request_id") == quiet.request_ids["failed"] and line["level"] == "error"
    ]
    assert HEX32.match(error["trace_id"])  # the SDK made the request's span
    time.sleep(0.5)  # several export intervals
    assert quiet.service.sink.requests == 0


def test_log_level_warning_writes_no_info_lines(quiet: Traffic) -> None:
    lines = quiet.service.log_lines()
    assert {line["level"] for line in lines} <= {"warning", "error", "critical"}
    assert not [line for line in lines if line["event"] == "request"]
    # The error of the failed request is there, so lines are written at all.
    assert any(line.get("request_id") == quiet.request_ids["failed"] for line in lines)
    assert quiet.service.stderr_text() == ""


@pytest.fixture(scope="session")
def verbose(boot: Boot) -> Traffic:
    """Spans written to the log, only those of sampled callers, and every debug line."""
    service = boot(
        OTEL_TRACES_EXPORTER="console",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0",
        LOG_LEVEL="debug",
    )
    secret = "s3cr3t" + uuid.uuid4().hex
    ids = {"unsampled": rid(), "sampled": rid(), "secret": secret}
    ids["trace_id"], ids["parent"] = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    headers = {"Authorization": f"Bearer {secret}-auth", "Cookie": f"session={secret}-cookie"}
    with service.client(headers=headers) as client:
        client.get("/api/items", headers={"X-Request-ID": ids["unsampled"]})
        client.post("/api/items", json={"name": "verbose"})
        client.post("/api/items", content=b"{", headers={"Content-Type": "application/json"})
        client.get(
            "/api/items",
            headers={
                "X-Request-ID": ids["sampled"],
                "traceparent": f"00-{ids['trace_id']}-{ids['parent']}-01",
            },
        )
    # The server span ends after its children: once it is written, they are.
    service.wait_for_log(
        lambda r: (
            r["event"] == "span"
            and r["span"]["trace_id"] == ids["trace_id"]
            and r["span"]["kind"] == "SERVER"
        )
    )
    return Traffic(service, ids)


def test_console_exporter_writes_spans_as_log_lines(verbose: Traffic) -> None:
    service, ids = verbose
    lines = service.log_lines()
    for line in lines:
        assert {"timestamp", "level", "logger", "event"} <= line.keys(), line
    spans = [line for line in lines if line["event"] == "span"]
    for line in spans:
        assert (line["logger"], line["level"]) == (f"{service.project.package}.tracing", "info")
    traced = {line["span"]["span_id"]: line["span"] for line in spans}
    mine = [span for span in traced.values() if span["trace_id"] == ids["trace_id"]]
    (server,) = [span for span in mine if span["kind"] == "SERVER"]
    assert server["name"] == "GET /api/items"
    assert server["parent_span_id"] == ids["parent"]
    assert server["attributes"]["http.route"] == "/api/items"
    assert server["attributes"]["http.response.status_code"] == 200
    assert server["status"] in {"UNSET", "OK"}
    assert ISO_UTC.match(server["start_time"])
    assert isinstance(server["duration_ms"], float) and server["duration_ms"] > 0
    assert HEX16.match(server["span_id"])
    (access,) = access_lines(service, ids["sampled"])
    assert access["span_id"] == server["span_id"]
    clients = [span for span in mine if span["kind"] == "CLIENT"]
    assert clients
    for span in clients:
        ancestor = span
        while ancestor["parent_span_id"] != server["span_id"]:
            ancestor = traced[ancestor["parent_span_id"]]
    assert service.sink.requests == 0  # the console is the only exporter
    assert service.stderr_text() == ""


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


def test_authorization_and_cookies_are_never_logged_at_debug(verbose: Traffic) -> None:
    service, ids = verbose
    assert any(line["level"] == "debug" for line in service.log_lines())
    assert ids["secret"] not in service.stdout_text()
    assert ids["secret"] not in service.stderr_text()


def test_a_request_id_ends_with_its_request(verbose: Traffic) -> None:
    """What the server logs after a response (closing the connection, reading
    the next request) carries no id of the request before."""
    service = verbose.service
    first, second = rid(), rid()
    for request_id in (first, second):
        httpx.get(service.base_url + "/api/items", headers={"X-Request-ID": request_id})
        access_lines(service, request_id)
    lines = service.log_lines()
    (end,) = [
        n
        for n, line in enumerate(lines)
        if line.get("request_id") == first and line["event"] == "request"
    ]
    assert any(line["level"] == "debug" for line in lines[end + 1 :])
    assert [line for line in lines[end + 1 :] if line.get("request_id") == first] == []


def test_console_log_format_is_for_humans(boot: Boot) -> None:
    service = boot(LOG_FORMAT="console")
    httpx.get(service.base_url + "/api/items")
    deadline = time.monotonic() + 5
    while "http_route" not in service.stdout_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    text = service.stdout_text()
    assert "http_route" in text
    assert not text.lstrip().startswith("{")


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


def server_pids(master: int) -> set[int]:
    """The master and its children, from /proc."""
    pids = {master}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            pids.add(int(stat.parent.name))
    return pids


@pytest.fixture(scope="module")
def two_workers(boot: Boot) -> Service:
    """The service with two worker processes, for tests that do not count requests."""
    return boot(WEB_CONCURRENCY="2")


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


def test_sigterm_drains_finishes_in_flight_work_and_exits_zero(boot: Boot) -> None:
    drain = 1.0
    service = boot(DRAIN_DELAY=str(drain))
    trace_ids = [uuid.uuid4().hex for _ in range(3)]
    for trace_id in trace_ids:
        httpx.get(
            service.base_url + "/api/items",
            headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
        )

    slow: dict[str, Any] = {}
    upload_seconds = 2.5
    upload = threading.Thread(
        target=lambda: slow.update(
            response=slow_post_json(
                service.port,
                "/api/items",
                {"name": "in flight at SIGTERM"},
                seconds=upload_seconds,
                headers={"X-Request-ID": "in-flight"},
            )
        )
    )
    upload.start()
    time.sleep(0.3)

    service.signal(15)
    signalled = time.monotonic()
    ready_codes = []
    while time.monotonic() - signalled < 0.3:
        ready_codes.append(
            (time.monotonic() - signalled, httpx.get(service.base_url + "/ready").status_code)
        )
    first_503 = next(t for t, code in ready_codes if code == 503)
    assert first_503 < 0.1
    assert all(code == 503 for t, code in ready_codes if t >= first_503)
    assert samples(scrape(service).text, "service_ready")[0].value == 0
    assert httpx.get(service.base_url + "/healthz").status_code == 200

    # After the drain delay the listener is closed: refused, not left hanging. A connection
    # the kernel queued in the backlog just before the close is reset instead of refused.
    refused_at = None
    while time.monotonic() - signalled < drain + 2:
        try:
            httpx.get(service.base_url + "/healthz", timeout=httpx.Timeout(1.0, connect=0.5))
        except (httpx.ConnectError, httpx.ReadError) as error:
            assert isinstance(error, httpx.ConnectError) or "reset" in str(error).lower(), error
            refused_at = time.monotonic() - signalled
            break
        time.sleep(0.05)
    assert refused_at is not None and refused_at >= drain - 0.1

    status = service.wait(timeout=upload_seconds + drain + 2)
    upload.join()
    assert status == 0
    assert slow["response"].status == 201
    assert slow["response"].json()["name"] == "in flight at SIGTERM"

    # Every finished request's span was exported before the exit.
    for trace_id in trace_ids:
        assert any(s.trace_id == trace_id for s in service.sink.snapshot())
    (in_flight,) = access_lines(service, "in-flight")
    assert any(s.span_id == in_flight["span_id"] for s in service.sink.snapshot())
    service.log_lines()  # every line, up to the last one, is JSON
    assert service.stderr_text() == ""


# --- 3. Error vocabulary and validation details --------------------------------------------

OVERSIZED = b'{"name": "' + b"x" * (1024 * 1024 + 1) + b'"}'


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error", "message"),
    [
        ("GET", "/no/such/page", None, 404, "not_found", "Not found."),
        ("GET", "/api/items/987654321", None, 404, "not_found", "Not found."),
        ("DELETE", "/api/items", None, 405, "method_not_allowed", "Method not allowed."),
        ("POST", "/api/items", b"{", 400, "invalid_json", "The request body is not valid JSON."),
        ("POST", "/api/items", b"{}", 422, "validation_error", "The request is not valid."),
        (
            "POST",
            "/api/items",
            OVERSIZED,
            413,
            "payload_too_large",
            "The request body is too large.",
        ),
    ],
    ids=["unknown-url", "unknown-item", "wrong-method", "bad-json", "invalid", "too-large"],
)
def test_error_bodies_use_the_contracts_codes_and_messages(
    service: Service,
    method: str,
    path: str,
    body: bytes | None,
    status: int,
    error: str,
    message: str,
) -> None:
    request_id = rid()
    response = httpx.request(
        method,
        service.base_url + path,
        content=body,
        headers={"X-Request-ID": request_id, "Content-Type": "application/json"},
    )
    assert response.status_code == status
    found = response.json()
    found.pop("details", None)
    assert found == {"error": error, "message": message, "request_id": request_id}


@pytest.mark.parametrize(
    ("payload", "loc", "kind"),
    [
        ({}, ["body", "name"], "missing"),
        ({"name": 5}, ["body", "name"], "string_type"),
        ({"name": None}, ["body", "name"], "string_type"),
        ({"name": ""}, ["body", "name"], "string_too_short"),
        ({"name": "x" * 201}, ["body", "name"], "string_too_long"),
        ({"name": "tab\there"}, ["body", "name"], "string_pattern_mismatch"),
        ({"name": "a\u0000b"}, ["body", "name"], "string_pattern_mismatch"),
        (b'{"name": "\\udc00"}', ["body", "name"], "string_unicode"),
        (["name"], ["body"], "model_attributes_type"),
        (7, ["body"], "model_attributes_type"),
    ],
    ids=[
        "missing",
        "number",
        "null",
        "empty",
        "too-long",
        "tab",
        "nul",
        "lone-surrogate",
        "list",
        "integer",
    ],
)
def test_validation_details_have_one_shape(
    service: Service, payload: Any, loc: list[str], kind: str
) -> None:
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    response = httpx.post(
        service.base_url + "/api/items",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    (problem,) = response.json()["details"]
    assert set(problem) == {"loc", "msg", "type"}
    assert problem["loc"] == loc
    assert problem["type"] == kind
    assert isinstance(problem["msg"], str) and problem["msg"].strip()


# --- 6, 10. Client spans on PostgreSQL ------------------------------------------------------


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


# --- 6. Tracing with several workers -----------------------------------------------------


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
        spans = service.sink.wait_for(
            lambda s, batch=batch: s.kind == "SERVER" and s.trace_id in batch, count=len(batch)
        )
        serving |= {int(s.resource["process.pid"]) for s in spans}

    time.sleep(0.3)  # a second export of any span would have arrived by now
    servers = [s for s in service.sink.snapshot() if s.kind == "SERVER" and s.trace_id in sent]
    assert sorted(s.trace_id for s in servers) == sorted(sent)
    assert {int(s.resource["process.pid"]) for s in servers} == workers
