"""Contract section 13: error tracking, with a local receiver standing in for
the Sentry DSN's host; what the SDK sends (envelopes) is decoded here."""

from __future__ import annotations

import gzip
import json
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple

import httpx
import pytest

from kit.project import Service
from kit.receiver import Received, Receiver
from tests.conformance.helpers import rid
from tests.conftest import Boot

pytestmark = pytest.mark.boot

PROJECT_ID = "42"
PUBLIC_KEY = "0123456789abcdef0123456789abcdef"


class Tracked(NamedTuple):
    service: Service
    receiver: Receiver


def envelope(request: Received) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """A Sentry envelope: its header, then each item's header and payload."""
    encoding = request.headers.get("content-encoding", "identity")
    assert encoding in ("gzip", "identity"), encoding
    body = gzip.decompress(request.body) if encoding == "gzip" else request.body
    first, _, rest = body.partition(b"\n")
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] :].removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, payload))
    return json.loads(first), items


def raw(request: Received) -> bytes:
    """The request's bytes as the SDK meant them (decompressed)."""
    if request.headers.get("content-encoding") == "gzip":
        return gzip.decompress(request.body)
    return request.body


def events(receiver: Receiver) -> list[dict[str, Any]]:
    found = []
    for request in receiver.snapshot():
        assert request.path == f"/api/{PROJECT_ID}/envelope/", request.path
        assert f"sentry_key={PUBLIC_KEY}" in request.headers.get("x-sentry-auth", "")
        _, items = envelope(request)
        found += [json.loads(payload) for header, payload in items if header["type"] == "event"]
    return found


def event_of(receiver: Receiver, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in events(receiver) if e.get("tags", {}).get("request_id") == request_id]
        if found:
            (event,) = found
            return event
        time.sleep(0.05)
    raise AssertionError(f"no event for request {request_id} within {timeout}s")


@pytest.fixture(scope="module")
def tracked(boot: Boot) -> Iterator[Tracked]:
    receiver = Receiver()
    dsn = f"http://{PUBLIC_KEY}@127.0.0.1:{receiver.port}/{PROJECT_ID}"
    # PYTHONVERBOSE: every import is written to stderr (test_nothing_is_imported...).
    service = boot(SENTRY_DSN=dsn, PYTHONVERBOSE="1")
    yield Tracked(service, receiver)
    receiver.close()


def test_an_unhandled_exception_is_reported_with_the_requests_ids(tracked: Tracked) -> None:
    service, receiver = tracked
    request_id, trace_id = rid(), uuid.uuid4().hex
    with service.items_table_dropped():
        response = httpx.get(
            service.base_url + "/api/items",
            headers={
                "X-Request-ID": request_id,
                "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
            },
        )
    assert response.status_code == 500
    event = event_of(receiver, request_id)
    assert event["level"] == "error"
    assert event["tags"]["trace_id"] == trace_id
    assert event["tags"]["service.name"] == service.project.path.name
    assert event["environment"] == "development"
    assert event["release"] == f"{service.project.path.name}@0.1.0"
    exception = event["exception"]["values"][-1]
    assert exception["type"] and exception["stacktrace"]["frames"]
    # Reported once: the one unhandled exception of that request.
    time.sleep(0.5)
    tagged = [e for e in events(receiver) if e["tags"].get("request_id") == request_id]
    assert len(tagged) == 1


def test_no_body_header_cookie_query_or_local_is_sent(tracked: Tracked) -> None:
    service, receiver = tracked
    secret = "s3cr3t" + uuid.uuid4().hex
    request_id = rid()
    with service.items_table_dropped():
        response = httpx.post(
            service.base_url + f"/api/items?token={secret}-query",
            json={"name": f"{secret}-body"},
            headers={
                "X-Request-ID": request_id,
                "Authorization": f"Bearer {secret}-auth",
                "Cookie": f"session={secret}-cookie",
            },
        )
    assert response.status_code == 500
    event = event_of(receiver, request_id)
    for request in receiver.snapshot():
        assert secret.encode() not in raw(request)
    for key in ("request", "user", "breadcrumbs", "extra"):
        assert key not in event, key
    for exception in event["exception"]["values"]:
        for frame in exception.get("stacktrace", {}).get("frames", []):
            assert "vars" not in frame, frame


def test_client_errors_and_designed_503s_are_never_reported(tracked: Tracked) -> None:
    service, receiver = tracked
    quiet = []
    requests: list[tuple[str, str, object]] = [
        ("GET", "/no/such/page", None),  # 404
        ("DELETE", "/api/items", None),  # 405
        ("POST", "/api/items", {}),  # 422
        ("POST", "/api/items", "{"),  # 400
    ]
    with service.client() as client:
        for method, path, body in requests:
            request_id = rid()
            quiet.append(request_id)
            content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            response = client.request(
                method,
                path,
                content=content if body is not None else None,
                headers={"X-Request-ID": request_id, "Content-Type": "application/json"},
            )
            assert 400 <= response.status_code < 500, (path, response.status_code)
        marker = rid()
        with service.items_table_dropped():
            assert client.get("/api/items", headers={"X-Request-ID": marker}).status_code == 500
    event_of(receiver, marker)  # sent after the others: they would have arrived by now
    time.sleep(0.3)
    reported = {e["tags"].get("request_id") for e in events(receiver)}
    assert not reported & set(quiet)


def test_nothing_of_sentry_is_imported_without_a_dsn(boot: Boot, tracked: Tracked) -> None:
    untracked = boot(PYTHONVERBOSE="1")
    for service in (untracked, tracked.service):
        with service.client() as client, service.items_table_dropped():
            assert client.get("/api/items").status_code == 500
        service.signal(signal.SIGTERM)
        assert service.wait(timeout=30) == 0
    assert "sentry_sdk" in tracked.service.stderr_text()  # PYTHONVERBOSE names each import
    assert "sentry_sdk" not in untracked.stderr_text()
