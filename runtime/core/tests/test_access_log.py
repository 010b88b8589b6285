"""The access line built in one pass (``logging.AccessLog``) is the line
structlog's processor chain writes for the same call, key for key and in the
same order, and it follows the same rules: the bound context merged and
redacted, the logger's level, and the chain itself when the processors are
not the service's JSON ones."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider
from structlog.typing import EventDict

from . import runtime_module

logs = runtime_module("logging")

NAME = "tests.runtime.access"
FIELDS = {
    "http_method": "GET",
    "http_route": "/api/items/{item_id}",
    "http_path": "/api/items/42",
    "http_status": 200,
    "duration_ms": 1.25,
}


@pytest.fixture
def request_context() -> Iterator[tuple[str, str]]:
    """Inside a request: a current span, and the request's bound context."""
    if logs._json_processors is None:  # unless the service or Django's settings did
        logs.configure_logging("info", "json")
    logger = logging.getLogger(NAME)
    level = logger.level
    logger.setLevel(logging.INFO)
    span = TracerProvider().get_tracer(__name__).start_span("GET /api/items/{item_id}")
    token = context.attach(trace.set_span_in_context(span))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        request_id="0123456789abcdef0123456789abcdef", tenant="acme", cookie="session=s3cr3t"
    )
    ids = span.get_span_context()
    try:
        yield format(ids.trace_id, "032x"), format(ids.span_id, "016x")
    finally:
        structlog.contextvars.clear_contextvars()
        context.detach(token)
        logger.setLevel(level)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_the_line_is_the_chains_line(
    request_context: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    logs.get_logger(NAME).info("request", **FIELDS)
    logs.AccessLog(NAME).write("request", dict(FIELDS), request_context)
    chain, direct = _lines(capsys)
    assert list(direct) == list(chain)
    assert {**direct, "timestamp": ""} == {**chain, "timestamp": ""}
    assert (direct["trace_id"], direct["span_id"]) == request_context
    assert direct["tenant"] == "acme"
    assert direct["cookie"] == logs.REDACTED


def test_the_loggers_level_silences_it(
    request_context: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    logging.getLogger(NAME).setLevel(logging.WARNING)
    capsys.readouterr()
    logs.AccessLog(NAME).write("request", dict(FIELDS), request_context)
    assert capsys.readouterr().out == ""


def test_processors_of_the_users_own_write_it(
    request_context: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    ours = structlog.get_config()["processors"]

    def add_region(_: object, __: str, event_dict: EventDict) -> EventDict:
        event_dict["region"] = "eu-west-1"
        return event_dict

    structlog.configure(processors=[add_region, *ours])
    try:
        capsys.readouterr()
        logs.AccessLog(NAME).write("request", dict(FIELDS), request_context)
    finally:
        structlog.configure(processors=ours)
    (line,) = _lines(capsys)
    assert line["region"] == "eu-west-1"
    assert line["http_route"] == FIELDS["http_route"]
