"""Contract section 3, errors: the error vocabulary and validation details.

Also the faults whose error bodies the section defines (an unhandled exception,
an unreachable database), with the logs, spans and metrics they leave.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from kit.http import post_chunked_then_get
from kit.metrics import samples, total, value
from kit.project import Service
from tests.conformance.helpers import HEX32, access_lines, rid, scrape, server_span
from tests.conftest import Boot

pytestmark = pytest.mark.boot


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


def test_oversized_body_is_a_413(service: Service) -> None:
    payload = b'{"name": "' + b"x" * (1024 * 1024 + 1) + b'"}'
    response = httpx.post(
        service.base_url + "/api/items",
        content=payload,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


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

    span = server_span(service.spans, trace_id)
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

    # Nothing has called /ready: the service checks itself from its start.
    deadline = time.monotonic() + 5
    while not samples(scrape(service).text, "service_ready") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert samples(scrape(service).text, "service_ready")[0].value == 0
    failures = {"http_route": "/api/items", "error_type": "database_unavailable"}
    assert (
        value(scrape(service).text, "http_server_request_duration_seconds_count", **failures) == 0
    )
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
