from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient


def test_create_then_read(client: FlaskClient) -> None:
    created = client.post("/api/items", json={"name": "café ☕"})
    assert created.status_code == 201
    item = created.get_json()
    assert item["name"] == "café ☕"

    fetched = client.get(f"/api/items/{item['id']}")
    assert fetched.status_code == 200
    assert fetched.get_json() == item
    assert item in client.get("/api/items").get_json()


def test_unknown_item_is_a_json_404(client: FlaskClient) -> None:
    for item_id in ("999999", "abc", "0", "-1", "99999999999999999999"):
        response = client.get(f"/api/items/{item_id}")
        assert response.status_code == 404, item_id
        assert response.get_json()["error"] == "not_found"
        assert response.get_json()["request_id"] == response.headers["X-Request-ID"]


def test_malformed_json_is_a_400(client: FlaskClient) -> None:
    for body in (
        b'{"name": ',
        b"\xff\xfe\x00",
        b"",
        b'{"name": NaN}',
        b'\xef\xbb\xbf{"name": "x"}',
    ):
        response = client.post(
            "/api/items", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, body
        assert response.get_json()["error"] == "invalid_json"


def test_invalid_body_is_a_422(client: FlaskClient) -> None:
    invalid: list[object] = [{}, {"name": ""}, {"name": 5}, {"name": "x" * 201}, ["name"]]
    for body in [*invalid, {"name": "a\u0000b"}, {"name": "tab\there"}]:
        response = client.post("/api/items", json=body)
        assert response.status_code == 422, body
        assert response.get_json()["error"] == "validation_error"
        assert response.get_json()["details"]
    lone_surrogate = client.post(
        "/api/items", data=b'{"name": "\\ud800"}', headers={"Content-Type": "application/json"}
    )
    assert lone_surrogate.status_code == 422


def test_root_names_the_service(client: FlaskClient) -> None:
    assert client.get("/").get_json() == {
        "service": "{{ cookiecutter.project_slug }}",
        "version": "{{ cookiecutter.version }}",
    }


def test_oversized_body_is_a_413(client: FlaskClient, app: Flask) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = client.post(
        "/api/items",
        data=b'{"name": "' + b"x" * limit + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"


def test_wrong_method_is_a_405_that_lists_the_right_ones(client: FlaskClient) -> None:
    response = client.delete("/api/items")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_request_id_is_kept_only_when_safe(client: FlaskClient) -> None:
    kept = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["X-Request-ID"] == "abc-123"
    replaced = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert replaced.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(replaced.headers["X-Request-ID"]) == 32
