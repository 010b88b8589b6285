"""The service's guarantees under faults, checked on this project's own code.

The kit that generated this project runs these scenarios and more for every
template; keeping these here means a change that breaks one fails ``make test``.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import Deploy
from .process import Service

pytestmark = pytest.mark.resilience


def create_item(service: Service) -> int:
    request = urllib.request.Request(
        service.base_url + "/api/items",
        data=json.dumps({"name": "resilient"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return int(json.loads(response.read())["id"])


def wait_until_pool_idle(service: Service, timeout: float = 10) -> None:
    """Until no connection is in use: work a request started after its response is done."""
    used = (
        "db_client_connections{"
        'db_client_connection_pool_name="default",db_client_connection_state="used"}'
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = service.get("/metrics")[1].decode().splitlines()
        if any(line.startswith(used) and float(line.split()[-1]) == 0 for line in lines):
            return
        time.sleep(0.05)
    raise AssertionError("the pool still has connections in use")


def timed_get(service: Service, path: str, request_id: str = "") -> tuple[int, float]:
    """Status and duration of a GET; with ``request_id``, the duration the service
    itself logged (the client's clock also counts its own thread scheduling)."""
    started = time.monotonic()
    if not request_id:
        status, _ = service.get(path, timeout=30)
        return status, time.monotonic() - started
    request = urllib.request.Request(service.base_url + path, headers={"X-Request-ID": request_id})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = int(error.code)
    (line,) = service.wait_for_log(
        lambda r: r.get("request_id") == request_id and r.get("event") == "request"
    )
    return status, float(line["duration_ms"]) / 1000


def test_sigterm_lets_requests_in_flight_finish(deploy: Deploy) -> None:
    deployed = deploy(DRAIN_DELAY="0.5")
    service = deployed.service
    item = create_item(service)
    deployed.proxy.set_mode("pass", latency=0.2)  # every query now takes a while
    with ThreadPoolExecutor(max_workers=3) as pool:
        in_flight = [pool.submit(timed_get, service, f"/api/items/{item}") for _ in range(3)]
        time.sleep(0.3)
        service.signal(signal.SIGTERM)
        ready, _ = service.get("/ready")
        outcomes = [future.result() for future in in_flight]
        status = service.wait(timeout=30)
    assert ready == 503
    assert [code for code, _ in outcomes] == [200, 200, 200], service.output()
    assert status == 0


def test_a_database_outage_is_a_fast_503_and_heals_by_itself(deploy: Deploy) -> None:
    connect_timeout = 2.0
    deployed = deploy(DB_CONNECT_TIMEOUT=str(connect_timeout))
    service = deployed.service
    item = create_item(service)

    deployed.proxy.set_mode("refuse")
    status, seconds = timed_get(service, f"/api/items/{item}", "during-outage")
    assert status == 503
    assert seconds < connect_timeout + 1
    assert json.loads(service.get(f"/api/items/{item}")[1])["error"] == "database_unavailable"
    assert service.get("/healthz")[0] == 200
    assert service.get("/ready")[0] == 503

    deployed.proxy.set_mode("pass")
    deadline = time.monotonic() + 2
    while service.get(f"/api/items/{item}")[0] != 200:
        assert time.monotonic() < deadline, "not serving again within 2 s of the database"
        time.sleep(0.05)
    assert all(service.get(f"/api/items/{item}")[0] == 200 for _ in range(20))


def test_an_exhausted_pool_answers_the_excess_with_503_in_time(deploy: Deploy) -> None:
    pool_timeout = 1.0
    deployed = deploy(
        DB_POOL_SIZE="1",
        DB_MAX_OVERFLOW="1",
        DB_POOL_TIMEOUT=str(pool_timeout),
        MAX_IN_FLIGHT="8",
        WEB_THREADS="10",
    )
    service = deployed.service
    item = create_item(service)
    wait_until_pool_idle(service)
    deployed.proxy.set_mode("pass", latency=0.5)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(
            pool.map(lambda n: timed_get(service, f"/api/items/{item}", f"pool-{n}"), range(4))
        )
    deployed.proxy.set_mode("pass", latency=0.0)
    served = [seconds for code, seconds in outcomes if code == 200]
    refused = [seconds for code, seconds in outcomes if code == 503]
    assert (len(served), len(refused)) == (2, 2), (outcomes, service.output())
    assert all(seconds < pool_timeout + 0.5 for seconds in refused), outcomes
    assert service.get(f"/api/items/{item}")[0] == 200
