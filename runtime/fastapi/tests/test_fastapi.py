"""The runtime in a FastAPI application of its own, with a router the runtime
has never seen: what it brings to every route without the route asking."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Response
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

from . import runtime_module

app_module = runtime_module("app")
STATUS = "http_response_status_code"


class Thing(BaseModel):
    name: str


def application() -> FastAPI:
    app: FastAPI = app_module.create_app("Things")
    router = APIRouter(prefix="/test")

    @router.get("/things")
    async def list_things() -> list[Thing]:
        return [Thing(name="one")]

    @router.post("/things", status_code=201)
    async def make_thing(thing: Thing) -> Thing:
        return thing

    @router.get("/things/{thing_id}")
    async def get_thing(thing_id: int) -> Thing:
        return Thing(name=str(thing_id))

    @router.post("/only-post")
    async def only_post() -> None:
        return None

    @router.get("/own-head")
    async def get_with_own_head() -> dict[str, str]:
        return {"method": "GET"}

    @router.head("/own-head")
    async def own_head(response: Response) -> None:
        response.headers["X-Own-Head"] = "yes"

    app.include_router(router)
    return app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(application())


def test_head_answers_as_get_without_the_body(client: TestClient) -> None:
    for path in ("/test/things", "/test/things/7", "/", "/healthz"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"", path
        assert head.headers["content-length"] == got.headers["content-length"], path
        assert head.headers["content-type"] == got.headers["content-type"], path


def test_head_is_counted_as_head_under_the_route(client: TestClient) -> None:
    client.head("/test/things/7")
    families = text_string_to_metric_families(client.get("/metrics").text)
    (durations,) = (f for f in families if f.name == "http_server_request_duration_seconds")
    counted = {
        tuple(sample.labels[name] for name in ("http_request_method", "http_route", STATUS))
        for sample in durations.samples
        if sample.name.endswith("_count")
    }
    assert ("HEAD", "/test/things/{thing_id}", "200") in counted


def test_head_where_there_is_no_get_is_a_405(client: TestClient) -> None:
    response = client.head("/test/only-post")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_a_route_of_its_own_for_head_answers_head(client: TestClient) -> None:
    response = client.head("/test/own-head")
    assert response.status_code == 200
    assert response.headers["x-own-head"] == "yes"


def operations(client: TestClient) -> dict[str, dict[str, Any]]:
    document = client.get("/openapi.json").json()
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def test_every_operation_names_the_errors_it_can_get(client: TestClient) -> None:
    declared = {name: set(op["responses"]) for name, op in operations(client).items()}
    always = {"500", "503"}
    assert declared["GET /test/things"] == {"200"} | always
    assert declared["POST /test/things"] == {"201", "400", "413", "415", "422"} | always
    assert declared["GET /test/things/{thing_id}"] == {"200", "404", "422"} | always


def test_errors_are_named_with_the_contract_body(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    answers = operations(client)["POST /test/things"]["responses"]
    for status, answer in answers.items():
        if status.startswith(("4", "5")):
            (body,) = answer["content"].values()
            name = "ValidationErrorBody" if status == "422" else "ErrorBody"
            assert body["schema"] == {"$ref": f"#/components/schemas/{name}"}, status
    assert answers["503"]["headers"]["Retry-After"]["required"] is True
    # What the service answers has every field the document requires.
    json = {"Content-Type": "application/json"}
    for response, name in (
        (client.post("/test/things", json={}), "ValidationErrorBody"),
        (client.post("/test/things", content=b"{}"), "ErrorBody"),  # 415
        (client.post("/test/things", content=b"{", headers=json), "ErrorBody"),  # 400
    ):
        assert set(schemas[name]["required"]) <= set(response.json()), response.json()
