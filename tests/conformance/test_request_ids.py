"""Contract section 4: request ids."""

from __future__ import annotations

import uuid

import httpx
import pytest

from kit.project import Service
from tests.conformance.helpers import HEX32, access_lines

pytestmark = pytest.mark.boot


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
        headers=[(b"X-Request-ID", value.encode("utf-8"))],
    )
    assert response.status_code == 404
    generated = response.headers["x-request-id"]
    assert generated != value
    assert HEX32.match(generated)
    new = uuid.UUID(hex=generated)  # a uuid4().hex, version and variant bits included
    assert (new.version, new.variant) == (4, uuid.RFC_4122)
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
