"""Contract section 12: outbound HTTP calls, with the example's webhook, against a
real HTTP receiver on 127.0.0.1 (kit/receiver.py) that answers, fails, hangs or
is not there at all."""

from __future__ import annotations

import itertools
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import httpx
import pytest

from kit.metrics import total
from kit.otlp import SpanRecord
from kit.process import free_port
from kit.project import Service
from kit.receiver import Received, Receiver
from tests.conformance.helpers import HEX32, rid, scrape, server_span
from tests.conftest import Boot

pytestmark = pytest.mark.boot

# A secret in the webhook's URL, as many webhooks have one: it never leaves the
# call itself (no span, no log line, no metric).
TOKEN = "s3cr3t" + uuid.uuid4().hex
HOOK_PATH = f"/hooks/items?token={TOKEN}"
DURATION = "http_client_request_duration_seconds_count"
DELIVERIES = "outbound_deliveries_total"
# Each attempt of a delivery whose receiver hangs times out after this long.
ATTEMPT_TIMEOUT = 1.0
# Four attempts: three waits of at most 0.5, 1 and 2 s, and the attempts.
DELIVERY_DEADLINE = 4 * ATTEMPT_TIMEOUT + 3.5 + 5


class Webhook(NamedTuple):
    service: Service
    receiver: Receiver


@pytest.fixture(scope="module")
def webhook(boot: Boot) -> Iterator[Webhook]:
    """The service, announcing its new items to a receiver the tests control."""
    receiver = Receiver()
    service = boot(WEBHOOK_URL=receiver.url + HOOK_PATH, HTTP_CLIENT_TIMEOUT=str(ATTEMPT_TIMEOUT))
    yield Webhook(service, receiver)
    receiver.close()


def traced_post(service: Service, name: str) -> tuple[str, str, httpx.Response]:
    """POST an item with a request id and a sampled trace of the test's own."""
    request_id, trace_id = rid(), uuid.uuid4().hex
    response = httpx.post(
        service.base_url + "/api/items",
        json={"name": name},
        headers={
            "X-Request-ID": request_id,
            "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
        },
        timeout=10,
    )
    return request_id, trace_id, response


def of_request(request_id: str) -> Any:
    return lambda received: received.headers.get("x-request-id") == request_id


def delivery_end(service: Service, request_id: str, timeout: float = DELIVERY_DEADLINE) -> Any:
    """The one line that ends a delivery that was not delivered."""
    (line,) = service.wait_for_log(
        lambda r: (
            r.get("request_id") == request_id
            and r.get("event") in ("delivery failed", "delivery abandoned")
        ),
        timeout=timeout,
    )
    return line


def client_spans(service: Service, trace_id: str, count: int) -> list[SpanRecord]:
    return service.spans.wait_for(
        lambda s: s.trace_id == trace_id and s.kind == "CLIENT" and "url.full" in s.attributes,
        count=count,
    )


def assert_no_secret(service: Service) -> None:
    assert TOKEN not in service.stdout_text()
    for span in service.spans.snapshot():
        assert TOKEN not in str(span.attributes)


def test_a_new_item_is_announced_with_the_requests_trace_and_id(webhook: Webhook) -> None:
    service, receiver = webhook
    receiver.answer(then=200)
    before = scrape(service).text
    request_id, trace_id, response = traced_post(service, "announced")
    assert response.status_code == 201
    item = response.json()

    (received,) = receiver.wait_for(of_request(request_id))
    assert received.method == "POST"
    assert received.path == HOOK_PATH
    assert received.headers["content-type"] == "application/json"
    event = received.json()
    assert HEX32.match(event["id"])
    assert event["type"] == "item.created"
    assert event["item"] == item
    # The receiver continues the request's trace, below the call's CLIENT span.
    version, seen_trace_id, parent, flags = received.headers["traceparent"].split("-")
    assert (version, seen_trace_id, flags) == ("00", trace_id, "01")

    (span,) = client_spans(service, trace_id, 1)
    assert span.span_id == parent
    assert span.name == "POST"
    assert span.parent_span_id == server_span(service.spans, trace_id).span_id
    assert span.attributes["http.request.method"] == "POST"
    assert span.attributes["server.address"] == "127.0.0.1"
    assert span.attributes["server.port"] == receiver.port
    assert span.attributes["url.full"] == f"{receiver.url}/hooks/items"
    assert span.attributes["http.response.status_code"] == 200
    assert "error.type" not in span.attributes
    assert span.status != "ERROR"

    time.sleep(0.2)  # the counter moves just after the answer
    after = scrape(service).text
    labels = {
        "http_request_method": "POST",
        "server_address": "127.0.0.1",
        "http_response_status_code": "200",
        "error_type": "",
    }
    assert total(after, DURATION, **labels) - total(before, DURATION, **labels) == 1
    delivered = {"delivery": "webhook", "outcome": "delivered"}
    assert total(after, DELIVERIES, **delivered) - total(before, DELIVERIES, **delivered) == 1
    # Outbound calls are not requests the service served.
    assert total(after, "http_server_request_duration_seconds_count", http_route="") == total(
        before, "http_server_request_duration_seconds_count", http_route=""
    )
    assert not [
        line
        for line in service.log_lines()
        if line.get("request_id") == request_id and line.get("event", "").startswith("delivery")
    ]
    assert_no_secret(service)


def test_5xx_answers_are_retried_with_backoff_until_one_is_taken(webhook: Webhook) -> None:
    service, receiver = webhook
    receiver.answer(503, 502, then=200)
    request_id, trace_id, response = traced_post(service, "retried")
    assert response.status_code == 201
    attempts = receiver.wait_for(of_request(request_id), count=3, timeout=DELIVERY_DEADLINE)
    assert len({a.json()["id"] for a in attempts}) == 1  # one event, sent three times
    time.sleep(2.5)  # longer than any wait left: no fourth attempt comes
    assert len(receiver.wait_for(of_request(request_id), count=3)) == 3
    spans = client_spans(service, trace_id, 3)
    assert sorted(s.attributes["http.response.status_code"] for s in spans) == [200, 502, 503]
    failed = [s for s in spans if s.attributes["http.response.status_code"] >= 500]
    assert {s.attributes["error.type"] for s in failed} == {"502", "503"}
    assert {s.status for s in failed} == {"ERROR"}
    assert not [
        line
        for line in service.log_lines()
        if line.get("request_id") == request_id and line.get("event", "").startswith("delivery")
    ]


def test_a_delivery_that_keeps_failing_stops_and_is_logged_and_counted(webhook: Webhook) -> None:
    service, receiver = webhook
    receiver.answer(then=503)
    before = scrape(service).text
    request_id, trace_id, response = traced_post(service, "refused")
    assert response.status_code == 201
    line = delivery_end(service, request_id)
    attempts = receiver.wait_for(of_request(request_id), count=4)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    # Full jitter below 0.5, 1 and 2 s: together under 3.5 s, never all at once.
    assert sum(gaps) < 3.5 + 1 and max(gaps) > 0.01, gaps
    assert line["event"] == "delivery failed" and line["level"] == "error"
    assert line["delivery"] == "webhook"
    assert line["server_address"] == "127.0.0.1"
    assert line["attempts"] == 4
    assert line["http_status"] == 503
    assert line["error_type"] == "503"
    assert line["trace_id"] == trace_id
    time.sleep(1.0)
    assert len(receiver.wait_for(of_request(request_id), count=4)) == 4  # and no fifth
    after = scrape(service).text
    failed = {"delivery": "webhook", "outcome": "failed"}
    assert total(after, DELIVERIES, **failed) - total(before, DELIVERIES, **failed) == 1
    labels = {
        "server_address": "127.0.0.1",
        "http_response_status_code": "503",
        "error_type": "503",
    }
    assert total(after, DURATION, **labels) - total(before, DURATION, **labels) == 4
    assert_no_secret(service)


def test_a_4xx_answer_fails_the_delivery_at_once(webhook: Webhook) -> None:
    service, receiver = webhook
    receiver.answer(then=400)
    request_id, _, response = traced_post(service, "rejected")
    assert response.status_code == 201
    line = delivery_end(service, request_id)
    assert (line["event"], line["attempts"], line["http_status"]) == ("delivery failed", 1, 400)
    time.sleep(1.0)
    assert len(receiver.wait_for(of_request(request_id))) == 1


def timed(call: Any) -> tuple[float, Any]:
    started = time.monotonic()
    result = call()
    return time.monotonic() - started, result


def test_a_receiver_that_hangs_changes_nothing_for_the_apis_clients(webhook: Webhook) -> None:
    service, receiver = webhook
    receiver.answer(then=200, hang=60)
    with ThreadPoolExecutor(4) as pool:
        posts = list(pool.map(lambda n: timed(lambda: traced_post(service, f"hung {n}")), range(4)))
    for seconds, (_, _, response) in posts:
        assert response.status_code == 201
        assert seconds < ATTEMPT_TIMEOUT, seconds  # it did not wait for the attempt
    with service.client() as client:
        for path in ("/api/items", "/ready", "/"):
            seconds, response = timed(lambda path=path: client.get(path))
            assert response.status_code == 200 and seconds < ATTEMPT_TIMEOUT, path
    # Each attempt times out after HTTP_CLIENT_TIMEOUT, and the delivery ends.
    request_id = posts[0][1][0]
    line = delivery_end(service, request_id, timeout=2 * DELIVERY_DEADLINE)
    assert line["attempts"] == 4
    assert line["error_type"] == "ReadTimeout"
    assert line["http_status"] is None
    receiver.answer(then=200)


def test_a_receiver_that_is_down_changes_nothing_for_the_apis_clients(boot: Boot) -> None:
    service = boot(WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/hook")
    with service.client() as client:
        for n in range(3):
            seconds, response = timed(lambda n=n: client.post("/api/items", json={"name": f"{n}"}))
            # Not waiting for the retries (seconds): the answer does not depend on them.
            assert response.status_code == 201 and seconds < 1.0, seconds
    request_id, trace_id, response = traced_post(service, "nobody listens")
    assert response.status_code == 201
    line = delivery_end(service, request_id)
    assert line["attempts"] == 4 and line["http_status"] is None
    assert line["error_type"] in ("ConnectError", "ConnectionError")  # httpx2, requests
    spans = client_spans(service, trace_id, 4)
    assert {s.attributes["error.type"] for s in spans} == {line["error_type"]}
    assert all("http.response.status_code" not in s.attributes for s in spans)
    metrics = scrape(service).text
    assert (
        total(metrics, DURATION, http_response_status_code="", error_type=line["error_type"]) >= 4
    )


def test_sigterm_abandons_a_delivery_whose_attempt_then_fails(boot: Boot) -> None:
    receiver = Receiver()
    receiver.answer(503, then=200, hang=60)  # a 5xx, then no answer at all
    try:
        service = boot(
            WEBHOOK_URL=receiver.url + "/hook",
            HTTP_CLIENT_TIMEOUT="2",
            DRAIN_DELAY="0",
            GRACEFUL_TIMEOUT="10",
        )
        request_id, _, response = traced_post(service, "cut short")
        assert response.status_code == 201
        receiver.wait_for(of_request(request_id), count=2)  # the second attempt is under way
        service.signal(signal.SIGTERM)
        stopped, status = timed(lambda: service.wait(timeout=20))
        assert status == 0
        # Within its attempt's timeout, not the graceful timeout nor the retries left.
        assert stopped < 2 + 2, stopped
        line = delivery_end(service, request_id, timeout=1)
        assert line["event"] == "delivery abandoned" and line["level"] == "warning"
        assert line["attempts"] == 2 and line["error_type"] == "ReadTimeout"
        assert len(receiver.snapshot()) == 2
    finally:
        receiver.close()


def test_a_delivery_under_way_at_sigterm_is_drained(boot: Boot) -> None:
    receiver = Receiver()
    receiver.answer(then=200, hang=1.0)  # each answer takes a second
    try:
        service = boot(WEBHOOK_URL=receiver.url + "/hook", DRAIN_DELAY="0")
        request_id, trace_id, response = traced_post(service, "drained")
        assert response.status_code == 201
        (received,) = receiver.wait_for(of_request(request_id))
        service.signal(signal.SIGTERM)
        assert service.wait(timeout=15) == 0
        assert not [
            line
            for line in service.log_lines()
            if line.get("request_id") == request_id and line.get("event", "").startswith("delivery")
        ]
        # The attempt's answer came before the worker exited, and its span was exported.
        (span,) = [
            s
            for s in service.spans.snapshot()
            if s.trace_id == trace_id and s.kind == "CLIENT" and "url.full" in s.attributes
        ]
        assert span.attributes["http.response.status_code"] == 200
        assert isinstance(received, Received)
    finally:
        receiver.close()
