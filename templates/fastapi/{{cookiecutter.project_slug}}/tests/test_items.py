from __future__ import annotations

from fastapi.testclient import TestClient


def test_create_then_read(client: TestClient) -> None:
    created = client.post("/api/items", json={"name": "café ☕"})
    assert created.status_code == 201
    item = created.json()
    assert item["name"] == "café ☕"

    fetched = client.get(f"/api/items/{item['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == item
    assert item in client.get("/api/items").json()


def test_unknown_item_is_a_json_404(client: TestClient) -> None:
    # 5000 digits: more than int() takes (4300), and no server limit in between here.
    for item_id in ("999999", "abc", "99999999999999999999", "9" * 5000):
        response = client.get(f"/api/items/{item_id}")
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert response.json()["request_id"] == response.headers["X-Request-ID"]


def test_malformed_json_is_a_400(client: TestClient) -> None:
    response = client.post(
        "/api/items", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


def test_invalid_body_is_a_422(client: TestClient) -> None:
    for body in ({}, {"name": ""}, {"name": 5}, {"name": "x" * 201}):
        response = client.post("/api/items", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"] == "validation_error"


def test_request_id_is_kept_only_when_safe(client: TestClient) -> None:
    kept = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["X-Request-ID"] == "abc-123"
    replaced = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert replaced.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(replaced.headers["X-Request-ID"]) == 32
