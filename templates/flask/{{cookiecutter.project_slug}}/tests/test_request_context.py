from __future__ import annotations

from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

from werkzeug.test import Client

from {{ cookiecutter.package_name }}.request_context import REQUEST_ID_KEY, RequestContextMiddleware


def echo_request_id(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Request-ID", "overwritten")])
    return [environ[REQUEST_ID_KEY].encode()]


def broken(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    raise RuntimeError("secret detail")


def test_the_id_reaches_the_application_and_the_response() -> None:
    client = Client(RequestContextMiddleware(echo_request_id))
    response = client.get("/", headers={"X-Request-ID": "caller-42"})
    assert response.get_data(as_text=True) == "caller-42"
    assert response.headers.getlist("X-Request-ID") == ["caller-42"]


def test_an_unsafe_id_is_replaced() -> None:
    client = Client(RequestContextMiddleware(echo_request_id))
    response = client.get("/", headers={"X-Request-ID": "x" * 65})
    generated = response.get_data(as_text=True)
    assert len(generated) == 32
    assert response.headers["X-Request-ID"] == generated


def test_a_failure_below_is_a_json_500_with_the_id() -> None:
    client = Client(RequestContextMiddleware(broken))
    response = client.get("/", headers={"X-Request-ID": "caller-43"})
    assert response.status_code == 500
    assert response.json == {
        "error": "internal_error",
        "message": "Internal server error.",
        "request_id": "caller-43",
    }
    assert response.headers["X-Request-ID"] == "caller-43"
