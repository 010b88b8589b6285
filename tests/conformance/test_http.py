"""Contract section 3: the HTTP surface, its routes and what they answer."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from kit.http import post_chunked_then_get
from kit.metrics import samples, total
from kit.project import Service
from tests.conformance.helpers import access_lines, create_item, rid, scrape

pytestmark = pytest.mark.boot


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


def test_longest_valid_name_is_accepted(service: Service) -> None:
    response = httpx.post(service.base_url + "/api/items", json={"name": "é" * 200})
    assert response.status_code == 201


def test_a_chunked_body_is_read_like_any_other(service: Service) -> None:
    name = f"sent in chunks {rid()}"
    body = json.dumps({"name": name}).encode()
    exchange = post_chunked_then_get(service.port, "/api/items", body, "/api/items", chunk_size=7)
    assert exchange.first.status == 201, exchange.first.body
    assert exchange.first.json()["name"] == name
    assert not exchange.closed and exchange.failure is None
    assert exchange.second is not None and exchange.second.status == 200
    assert name in [item["name"] for item in exchange.second.json()]
