"""The client for other services (http_client.py) against a receiver on
127.0.0.1: ``deliver`` retries 5xx until an answer is taken, gives up after
its attempts or at once on a 4xx, and every call carries the request's id
and trace."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from . import runtime_module
from .receiver import Receiver

http_client = runtime_module("http_client")
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736


def deliver(receiver: Receiver, **options: Any) -> bool:
    delivered: bool = http_client.deliver(
        "test", receiver.url + "/hook", {"n": 1}, base_backoff=0.01, **options
    )
    return delivered


def test_5xx_answers_are_retried_until_one_is_taken(receiver: Receiver) -> None:
    receiver.answer(503, 502, then=200)
    assert deliver(receiver)
    assert [request.json() for request in receiver.snapshot()] == [{"n": 1}] * 3


def test_a_delivery_stops_after_its_attempts(receiver: Receiver) -> None:
    receiver.answer(then=503)
    assert not deliver(receiver, attempts=3)
    assert len(receiver.snapshot()) == 3


def test_a_4xx_answer_is_not_retried(receiver: Receiver) -> None:
    receiver.answer(then=404)
    assert not deliver(receiver)
    assert len(receiver.snapshot()) == 1


def test_calls_carry_the_requests_id_and_trace(receiver: Receiver) -> None:
    request = SpanContext(TRACE_ID, 0x00F067AA0BA902B7, is_remote=False, trace_flags=TraceFlags(1))
    structlog.contextvars.bind_contextvars(request_id="the-request")
    try:
        with trace.use_span(NonRecordingSpan(request)):
            assert deliver(receiver)
    finally:
        structlog.contextvars.clear_contextvars()
    (received,) = receiver.snapshot()
    assert received.headers["x-request-id"] == "the-request"
    assert received.headers["traceparent"].split("-")[1] == format(TRACE_ID, "032x")


def test_requests_is_imported_at_the_first_call_not_with_the_client() -> None:
    """A service that never calls out does not import requests as it starts."""
    module = http_client.__name__
    code = (
        f"import sys, {module} as client; loaded = 'requests' in sys.modules; "
        "client.http_client(); print(loaded, 'requests' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
