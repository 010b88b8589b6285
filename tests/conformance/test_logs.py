"""Contract section 5: logs."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from kit.otlp import OtlpSink
from kit.project import Service
from tests.conformance.helpers import (
    HEX16,
    HEX32,
    ITEM_ROUTE,
    Traffic,
    access_lines,
    create_item,
    rid,
    server_span,
)
from tests.conftest import Boot

pytestmark = pytest.mark.boot


ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
LEVELS = {"debug", "info", "warning", "error", "critical"}


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
            response = client.get("/api/items", headers=[(b"X-Request-ID", value.encode())])
            replaced.append(response.headers["x-request-id"])
        create_item(client, "inside a request")
        client.get("/no/such/page", headers=[(b"X-Request-ID", b"bad id")])
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


def test_log_level_warning_writes_no_info_lines(quiet: Traffic) -> None:
    lines = quiet.service.log_lines()
    assert {line["level"] for line in lines} <= {"warning", "error", "critical"}
    assert not [line for line in lines if line["event"] == "request"]
    # The error of the failed request is there, so lines are written at all.
    assert any(line.get("request_id") == quiet.request_ids["failed"] for line in lines)
    assert quiet.service.stderr_text() == ""


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
    assert service.spans.requests == 0  # the console is the only exporter
    assert service.stderr_text() == ""


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
