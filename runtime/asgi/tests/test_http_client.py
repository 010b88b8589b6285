"""The client for other services (http_client.py) against a receiver on
127.0.0.1: ``deliver`` retries 5xx until an answer is taken, gives up after
its attempts or at once on a 4xx, and every call carries the request's id
and trace."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from . import runtime_module
from .receiver import Receiver

http_client, config = runtime_module("http_client"), runtime_module("config")
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736


def deliver(receiver: Receiver, **options: Any) -> bool:
    async def run() -> bool:
        settings = config.Settings.from_env({"HTTP_CLIENT_TIMEOUT": "0.5"})
        async with http_client.new_client(settings) as client:
            delivered: bool = await http_client.deliver(
                client, "test", receiver.url + "/hook", {"n": 1}, base_backoff=0.01, **options
            )
            return delivered

    return asyncio.run(run())


def test_5xx_answers_are_retried_until_one_is_taken(receiver: Receiver) -> None:
    receiver.answer(503, 502, then=200)
    assert deliver(receiver)
    assert [request.json() for request in receiver.snapshot()] == [{"n": 1}] * 3


def test_a_delivery_stops_after_its_attempts(receiver: Receiver) -> None:
    receiver.answer(then=503)
    assert not deliver(receiver, attempts=3)
    assert len(receiver.snapshot()) == 3


def test_the_connection_pool_is_made_at_the_first_call_and_kept(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[int] = []
    transport = http_client.httpx2.AsyncHTTPTransport

    def counted() -> Any:
        made.append(len(receiver.snapshot()))
        return transport()

    monkeypatch.setattr(http_client.httpx2, "AsyncHTTPTransport", counted)

    async def run() -> list[int]:
        async with http_client.new_client(config.Settings.from_env({})) as client:
            before = list(made)
            for _ in range(3):
                (await client.get(receiver.url + "/hook")).raise_for_status()
            return before

    assert asyncio.run(run()) == []
    # One pool, made before the first call went out, for all three.
    assert made == [0]
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
