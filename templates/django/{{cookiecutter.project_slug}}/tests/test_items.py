from __future__ import annotations

import pytest
from django.test import Client
from pytest_django import Settings


def test_create_then_read(client: Client) -> None:
    created = client.post("/api/items", {"name": "café ☕"}, content_type="application/json")
    assert created.status_code == 201
    item = created.json()
    assert item["name"] == "café ☕"

    fetched = client.get(f"/api/items/{item['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == item
    assert item in client.get("/api/items").json()


@pytest.mark.parametrize("item_id", ["999999", "0", "-1", "abc", "99999999999999999999"])
def test_unknown_item_is_a_json_404(client: Client, item_id: str) -> None:
    response = client.get(f"/api/items/{item_id}")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert response.json()["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.parametrize("body", [b'{"name": ', b"\xff\xfe\x00", b'{"name": "x"} trailing'])
def test_malformed_json_is_a_400(client: Client, body: bytes) -> None:
    response = client.post("/api/items", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": 5}, {"name": "x" * 201}, {"name": "a\u0000b"}, ["name"]],
)
def test_invalid_body_is_a_422(client: Client, body: object) -> None:
    response = client.post("/api/items", body, content_type="application/json")
    assert response.status_code == 422, body
    assert response.json()["error"] == "validation_error"
    assert response.json()["details"]


def test_a_lone_surrogate_is_valid_json_but_no_name(client: Client) -> None:
    response = client.post("/api/items", b'{"name": "\\ud800"}', content_type="application/json")
    assert response.status_code == 422
    assert response.json()["details"][0]["type"] == "string_unicode"


def test_wrong_method_is_a_json_405(client: Client) -> None:
    response = client.delete("/api/items")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_oversized_body_is_a_413(client: Client, settings: Settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = b'{"name": "' + b"x" * 2048 + b'"}'
    response = client.post("/api/items", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_request_id_is_kept_only_when_safe(client: Client) -> None:
    kept = client.get("/api/items", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["X-Request-ID"] == "abc-123"
    replaced = client.get("/api/items", headers={"X-Request-ID": "bad id\twith spaces"})
    assert replaced.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(replaced.headers["X-Request-ID"]) == 32
