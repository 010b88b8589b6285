"""Contract section 8: lifecycle and shutdown."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from kit.metrics import samples
from kit.project import requests_in_flight
from tests.conformance.helpers import access_lines, scrape
from tests.conftest import Boot

pytestmark = pytest.mark.boot


def test_sigterm_drains_finishes_in_flight_work_and_exits_zero(boot: Boot) -> None:
    # Long enough for the checks made while the listener is still open (the
    # readiness loop's 0.3 s, a scrape, a probe) on a machine busy with the
    # rest of the suite: at 1.0 s, the probe once found the listener closed.
    drain = 2.0
    service = boot(DRAIN_DELAY=str(drain))
    trace_ids = [uuid.uuid4().hex for _ in range(3)]
    for trace_id in trace_ids:
        httpx.get(
            service.base_url + "/api/items",
            headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
        )

    # A request the service is serving when SIGTERM comes: it waits for the
    # database until the listener has closed, then finishes.
    with requests_in_flight(service, 1, headers={"X-Request-ID": "in-flight"}) as held:
        service.signal(15)
        signalled = time.monotonic()
        ready_codes = []
        while time.monotonic() - signalled < 0.3:
            ready_codes.append(
                (time.monotonic() - signalled, httpx.get(service.base_url + "/ready").status_code)
            )
        first_503 = next(t for t, code in ready_codes if code == 503)
        assert first_503 < 0.1
        assert all(code == 503 for t, code in ready_codes if t >= first_503)
        assert samples(scrape(service).text, "service_ready")[0].value == 0
        assert httpx.get(service.base_url + "/healthz").status_code == 200

        # After the drain delay the listener is closed: refused, not left hanging. A
        # connection the kernel queued in the backlog just before the close is
        # reset, or closed without an answer, instead of refused.
        refused_at = None
        while time.monotonic() - signalled < drain + 2:
            try:
                httpx.get(service.base_url + "/healthz", timeout=httpx.Timeout(1.0, connect=0.5))
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError) as error:
                reset = "reset" in str(error).lower()
                assert not isinstance(error, httpx.ReadError) or reset, error
                refused_at = time.monotonic() - signalled
                break
            time.sleep(0.05)
        assert refused_at is not None and refused_at >= drain - 0.1

    status = service.wait(timeout=drain + 5)
    assert status == 0
    (response,) = held.responses
    assert response.status_code == 201
    assert response.json()["name"] == "in flight 0"

    # Every finished request's span was exported before the exit.
    for trace_id in trace_ids:
        assert any(s.trace_id == trace_id for s in service.spans.snapshot())
    (in_flight,) = access_lines(service, "in-flight")
    assert any(s.span_id == in_flight["span_id"] for s in service.spans.snapshot())
    service.log_lines()  # every line, up to the last one, is JSON
    assert service.stderr_text() == ""
