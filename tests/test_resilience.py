"""Faults, for every framework: a real PostgreSQL behind a fault-injecting proxy,
real signals, real concurrent clients that classify every outcome.

S = request duration injected through the proxy, G = graceful timeout,
P = pool size + overflow, L = in-flight limit (docs/contract.md, sections 8-10).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Boot
from tests.kit.faultproxy import FaultProxy
from tests.kit.http import slow_post_json
from tests.kit.metrics import total
from tests.kit.postgres import PROGRAMS, PostgresServer
from tests.kit.project import Service
from tests.kit.system import require

pytestmark = pytest.mark.boot


@dataclass
class Outcome:
    """What a client saw: a status, or the kind of transport failure."""

    started: float
    finished: float
    status: int | None = None
    failure: str | None = None  # refused, reset, timeout
    body: Any = None
    headers: dict[str, str] | None = None

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def call(
    service: Service,
    method: str,
    path: str,
    timeout: float = 15.0,
    client: httpx.Client | None = None,
    **kwargs: Any,
) -> Outcome:
    started = time.monotonic()
    try:
        if client is None:
            response = httpx.request(method, service.base_url + path, timeout=timeout, **kwargs)
        else:
            response = client.request(method, path, timeout=timeout, **kwargs)
    except httpx.ConnectError as error:
        kind = "refused" if "refused" in str(error).lower() else "connect-error"
        return Outcome(started, time.monotonic(), failure=kind)
    except (httpx.RemoteProtocolError, httpx.ReadError):
        return Outcome(started, time.monotonic(), failure="reset")
    except httpx.TimeoutException:
        return Outcome(started, time.monotonic(), failure="timeout")
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return Outcome(
        started, time.monotonic(), response.status_code, None, body, dict(response.headers)
    )


def concurrently(count: int, work: Callable[[int], Outcome]) -> list[Outcome]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(work, range(count)))


def worker_pids(service: Service) -> set[int]:
    """The gunicorn master's children, read from /proc."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == service.process.pid:
                found.add(int(entry))
    return found


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


Note = Callable[[str, float | int | str], None]
FIGURES: dict[str, dict[str, dict[str, float | int | str]]] = {}
FIGURES_DIR = Path(__file__).resolve().parents[1] / ".figures"


@pytest.fixture
def note(request: pytest.FixtureRequest) -> Note:
    """Record a figure this test measured, for docs/resilience.md (`make resilience-report`)."""
    framework = str(request.node.callspec.params.get("framework", "?"))
    scenario = request.node.name.split("[")[0].removeprefix("test_")
    mode = request.node.callspec.params.get("mode")
    key = f"{scenario} ({mode})" if mode else scenario

    def record(name: str, value: float | int | str) -> None:
        rounded = round(value, 3) if isinstance(value, float) else value
        FIGURES.setdefault(framework, {}).setdefault(key, {})[name] = rounded

    return record


@pytest.fixture(scope="module", autouse=True)
def _write_figures() -> Iterator[None]:
    yield
    if FIGURES:
        FIGURES_DIR.mkdir(exist_ok=True)
        (FIGURES_DIR / f"resilience-{os.getpid()}.json").write_text(json.dumps(FIGURES, indent=1))


@dataclass
class PgService:
    service: Service
    proxy: FaultProxy
    database: str


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    require(*PROGRAMS)  # skips here, fails in CI, when PostgreSQL is not installed
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def pg_boot(boot: Boot, postgres: PostgresServer) -> Iterator[Callable[..., PgService]]:
    """Boot the service on its own PostgreSQL database, reached through a fault proxy."""
    proxies: list[FaultProxy] = []

    def start(**env: str) -> PgService:
        database = f"svc_{uuid.uuid4().hex[:12]}"
        postgres.create_database(database)
        proxy = FaultProxy("127.0.0.1", postgres.port)
        proxies.append(proxy)
        service = boot(DATABASE_URL=postgres.url(database, port=proxy.port), **env)
        return PgService(service, proxy, database)

    yield start
    for proxy in proxies:
        proxy.close()


def seed(service: Service, count: int = 1) -> list[int]:
    ids = []
    for n in range(count):
        response = httpx.post(service.base_url + "/api/items", json={"name": f"seed {n}"})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def wait_until_pool_idle(service: Service, timeout: float = 10) -> None:
    """Until no pooled connection is in use (work a request started after its response)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = call(service, "GET", "/metrics").body
        if total(text, "db_client_connections", db_client_connection_state="used") == 0:
            return
        time.sleep(0.05)
    raise AssertionError("the pool still has connections in use")


def assert_unavailable(outcome: Outcome, within: float) -> None:
    assert outcome.status == 503, outcome
    assert outcome.body["error"] == "database_unavailable", outcome.body
    assert int(outcome.headers["retry-after"]) >= 1
    assert outcome.seconds < within, outcome.seconds


# --- 2. Database down --------------------------------------------------------------


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_database_outage_is_a_fast_503_and_recovery_needs_no_restart(
    pg_boot: Callable[..., PgService], mode: str, note: Note
) -> None:
    connect_timeout = 2.0
    pg = pg_boot(DB_CONNECT_TIMEOUT=str(connect_timeout))
    service = pg.service
    (item_id,) = seed(service)
    workers_before = worker_pids(service)
    assert call(service, "GET", f"/api/items/{item_id}").status == 200

    pg.proxy.set_mode(mode)
    slowest = 0.0
    for method, path, kwargs in [
        ("GET", f"/api/items/{item_id}", {}),
        ("GET", "/api/items", {}),
        ("POST", "/api/items", {"json": {"name": "during outage"}}),
    ]:
        outcome = call(service, method, path, **kwargs)
        assert_unavailable(outcome, within=connect_timeout + 1)
        slowest = max(slowest, outcome.seconds)
    healthz = call(service, "GET", "/healthz")
    assert (healthz.status, healthz.seconds < 0.5) == (200, True)
    ready = call(service, "GET", "/ready")
    assert ready.status == 503 and ready.seconds < 1 + 1
    note("DB_CONNECT_TIMEOUT (s)", connect_timeout)
    note("slowest 503 of 3 DB requests (s)", slowest)
    note("/ready 503 after (s)", ready.seconds)
    note("/healthz during outage (s)", healthz.seconds)
    assert ready.body["checks"]["database"]["status"] == "error"

    pg.proxy.set_mode("pass")
    returned = time.monotonic()
    with service.client() as client:  # one keep-alive connection, as a load balancer keeps
        first = client.get(f"/api/items/{item_id}")
        recovered = time.monotonic() - returned
        statuses = [client.get(f"/api/items/{item_id}").status_code for _ in range(99)]
    # Serving again within 2 s of the database's return, and not by luck:
    # the next 99 in a row succeed as well.
    assert first.status_code == 200 and recovered < 2.0
    assert statuses == [200] * 99
    note("first 200 after the database returned (s)", recovered)
    note("consecutive 200s after it", 1 + statuses.count(200))
    assert call(service, "GET", "/ready").status == 200
    assert worker_pids(service) == workers_before  # recovered without a restart


# --- 3. Database restarted ---------------------------------------------------------


def test_database_restart_costs_at_most_the_requests_in_flight(
    pg_boot: Callable[..., PgService], postgres: PostgresServer, note: Note
) -> None:
    pg = pg_boot()
    service = pg.service
    (item_id,) = seed(service)
    workers_before = worker_pids(service)
    clients = 4
    stop = threading.Event()
    outcomes: list[Outcome] = []

    def hammer(_: int) -> Outcome:
        while not stop.is_set():
            outcomes.append(call(service, "GET", f"/api/items/{item_id}"))
        return Outcome(0, 0)

    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        for n in range(clients):
            pool.submit(hammer, n)
        time.sleep(0.5)
        restart_began = time.monotonic()
        postgres.restart()
        restarted = time.monotonic()
        deadline = restarted + 15
        while sum(o.started > restarted for o in outcomes) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()

    note("pg_ctl restart -m fast took (s)", restarted - restart_began)
    failed = [o for o in outcomes if o.status != 200]
    after = [o for o in outcomes if o.started > restarted]
    # The first requests after the restart already succeed: stale pooled
    # connections are detected before use, not by a failing request.
    assert len(after) >= 40 and all(o.status == 200 for o in after)
    # Only requests under way while the server was down may fail, and they
    # fail as 503 JSON: never a 500, a hang or a dropped connection.
    for outcome in failed:
        assert restart_began <= outcome.finished and outcome.started <= restarted, outcome
        assert outcome.status == 503, (outcome, service.output())
        assert outcome.body["error"] == "database_unavailable"
    assert worker_pids(service) == workers_before
    note("requests by 4 clients", len(outcomes))
    note("503 (all during the restart)", len(failed))
    note("requests after the restart, all 200", len(after))


# --- 4. Pool exhaustion ------------------------------------------------------------


def test_pool_exhaustion_answers_the_excess_with_503_in_time(
    pg_boot: Callable[..., PgService], postgres: PostgresServer, note: Note
) -> None:
    size, overflow, pool_timeout, extra = 2, 1, 1.0, 3
    pg = pg_boot(
        DB_POOL_SIZE=str(size), DB_MAX_OVERFLOW=str(overflow), DB_POOL_TIMEOUT=str(pool_timeout)
    )
    service = pg.service
    (item_id,) = seed(service)
    wait_until_pool_idle(service)
    before = total(call(service, "GET", "/metrics").body, "db_client_connection_timeouts_total")

    pg.proxy.set_mode("pass", latency=0.5)  # every query now takes seconds
    peak = 0
    sampling = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not sampling.is_set():
            peak = max(peak, postgres.connections(pg.database))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    outcomes = concurrently(
        size + overflow + extra, lambda _: call(service, "GET", f"/api/items/{item_id}")
    )
    sampling.set()
    sampler.join()
    pg.proxy.set_mode("pass", latency=0.0)

    served = [o for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status == 503]
    assert (len(served), len(refused)) == (size + overflow, extra), [
        (o.status, o.seconds) for o in outcomes
    ]
    for outcome in refused:
        assert_unavailable(outcome, within=pool_timeout + 0.5)
    assert min(o.seconds for o in served) > pool_timeout + 0.5  # the slow ones really held the pool
    assert peak <= size + overflow
    after = total(call(service, "GET", "/metrics").body, "db_client_connection_timeouts_total")
    assert after - before == extra
    note("P = DB_POOL_SIZE + DB_MAX_OVERFLOW", size + overflow)
    note("concurrent slow requests", size + overflow + extra)
    note("served 200", len(served))
    note("slowest served (s)", max(o.seconds for o in served))
    note("refused 503", len(refused))
    note("slowest 503 (s), DB_POOL_TIMEOUT 1 s", max(o.seconds for o in refused))
    note("peak connections in pg_stat_activity", peak)
    note("db_client_connection_timeouts_total increase", after - before)
    assert all(call(service, "GET", f"/api/items/{item_id}").status == 200 for _ in range(10))


# --- 5. Statement timeout ----------------------------------------------------------


def test_statement_timeout_is_enforced_by_postgres_and_the_connection_reused(
    pg_boot: Callable[..., PgService], postgres: PostgresServer, note: Note
) -> None:
    limit = 1.0
    pg = pg_boot(DB_STATEMENT_TIMEOUT=str(limit), DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0")
    service = pg.service
    seed(service)
    assert call(service, "GET", "/api/items").status == 200

    def backends() -> set[int]:
        with postgres.connect() as connection:
            rows = connection.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = %s AND backend_type = 'client backend'",
                (pg.database,),
            ).fetchall()
        return {row[0] for row in rows}

    before = backends()
    assert len(before) == 1
    # Lock contention, a real cause of slow statements: the service's SELECT waits.
    with postgres.connect(pg.database) as locker:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        outcome = call(service, "GET", "/api/items")
        locker.execute("ROLLBACK")
    assert_unavailable(outcome, within=limit + 0.5)
    assert outcome.seconds >= limit * 0.9
    note("DB_STATEMENT_TIMEOUT (s)", limit)
    note("503 after (s)", outcome.seconds)
    assert call(service, "GET", "/api/items").status == 200
    assert backends() == before  # the same connection served the next request


# --- 6. Load shedding --------------------------------------------------------------


def test_requests_beyond_the_in_flight_limit_are_shed_at_once(boot: Boot, note: Note) -> None:
    limit, extra = 2, 20
    service = boot(MAX_IN_FLIGHT=str(limit))
    slow: list[Any] = []
    uploads = [
        threading.Thread(
            target=lambda: slow.append(
                slow_post_json(service.port, "/api/items", {"name": "holding a slot"}, seconds=5.0)
            )
        )
        for _ in range(limit)
    ]
    for upload in uploads:
        upload.start()
    time.sleep(0.5)
    for probe in ("/healthz", "/ready", "/metrics"):  # their one-time costs come first
        assert call(service, "GET", probe).status == 200
    (worker,) = worker_pids(service)
    rss_before = rss_kib(worker)

    clients = [service.client() for _ in range(extra)]
    marker = "shed-" + uuid.uuid4().hex[:8]
    start = threading.Barrier(extra)

    def refused(n: int) -> Outcome:
        start.wait()
        headers = {"X-Request-ID": f"{marker}-{n}"}
        return call(service, "GET", "/api/items", client=clients[n], headers=headers)

    shed = concurrently(extra, refused)
    probes = [call(service, "GET", path) for path in ("/healthz", "/ready", "/metrics")]
    burst = concurrently(10, lambda _: _many(service, 50))
    burst_done = time.monotonic()
    for upload in uploads:
        upload.join()
    assert all(o.finished < burst_done for o in shed)

    for outcome in shed:
        assert outcome.status == 503, outcome
        assert outcome.body["error"] == "overloaded"
        assert outcome.headers["retry-after"] == "1"
    # Answered at once: the service's own clock says so for every refusal
    # (the client's includes its own thread scheduling, 20 at a time).
    lines = service.wait_for_log(lambda r: str(r.get("request_id", "")).startswith(marker), extra)
    assert all(line["http_status"] == 503 and line["duration_ms"] < 50 for line in lines)
    note("MAX_IN_FLIGHT", limit)
    note(
        "503 overloaded, slowest by the service's clock (ms)",
        max(li["duration_ms"] for li in lines),
    )
    note(
        "503 overloaded, median by the client's clock (s)",
        sorted(o.seconds for o in shed)[len(shed) // 2],
    )
    assert sorted(o.seconds for o in shed)[len(shed) // 2] < 0.1
    assert all(p.status == 200 and p.seconds < 1 for p in probes)
    burst_statuses = [
        (o.status, o.failure, round(o.finished - burst_done, 2))
        for batch in burst
        for o in batch.body
    ]
    assert all(s == 503 for s, _, _ in burst_statuses), [b for b in burst_statuses if b[0] != 503][
        :10
    ]
    assert [r.status for r in slow] == [201] * limit
    # 500 refusals later the worker has not grown: nothing is queued or kept.
    grown = rss_kib(worker) - rss_before
    assert grown < 5 * 1024
    note("slowest probe during overload (s)", max(p.seconds for p in probes))
    note("worker memory growth after 520 refusals (KiB)", grown)
    shed_count = total(
        call(service, "GET", "/metrics").body,
        "http_server_request_duration_seconds_count",
        http_response_status_code="503",
        error_type="overloaded",
    )
    assert shed_count == extra + 500
    assert call(service, "GET", "/api/items").status == 200
    for client in clients:
        client.close()


def _many(service: Service, count: int) -> Outcome:
    started = time.monotonic()
    with service.client() as client:
        outcomes = [call(service, "GET", "/api/items", client=client) for _ in range(count)]
    return Outcome(started, time.monotonic(), 0, body=outcomes)


# --- 1. Graceful shutdown with database work in flight -------------------------------------


def test_sigterm_lets_database_requests_in_flight_finish(
    pg_boot: Callable[..., PgService], postgres: PostgresServer, note: Note
) -> None:
    drain = 1.0
    pg = pg_boot(DRAIN_DELAY=str(drain))
    service = pg.service
    (item_id,) = seed(service)
    pg.proxy.set_mode("pass", latency=0.3)
    duration = call(service, "GET", f"/api/items/{item_id}").seconds  # S
    assert duration > 0.6

    in_flight = 4
    trace_ids = [uuid.uuid4().hex for _ in range(in_flight)]

    def slow_read(n: int) -> Outcome:
        parent = uuid.uuid4().hex[:16]
        headers = {"traceparent": f"00-{trace_ids[n]}-{parent}-01"}
        return call(service, "GET", f"/api/items/{item_id}", headers=headers)

    with concurrent.futures.ThreadPoolExecutor(max_workers=in_flight) as pool:
        futures = [pool.submit(slow_read, n) for n in range(in_flight)]
        time.sleep(0.2)
        service.signal(15)
        signalled = time.monotonic()
        ready = call(service, "GET", "/ready", timeout=1)
        healthz = call(service, "GET", "/healthz", timeout=1)
        outcomes = [future.result() for future in futures]
        status = service.wait(timeout=duration + drain + 2)
        exited = time.monotonic()

    assert ready.status == 503 and ready.finished - signalled < 0.1 + 0.05
    assert ready.body["status"] == "draining"
    assert healthz.status == 200
    assert status == 0
    assert exited - signalled < duration + drain + 2
    for outcome in outcomes:
        assert outcome.status == 200, outcome
        assert outcome.body == {"id": item_id, "name": "seed 0"}
    exported = {s.trace_id for s in service.sink.snapshot() if s.kind == "SERVER"}
    assert set(trace_ids) <= exported
    # The pool was disposed after the last query, not leaked: no backend is left.
    deadline = time.monotonic() + 2
    while postgres.connections(pg.database) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert postgres.connections(pg.database) == 0
    note("S, one request through the slowed database (s)", duration)
    note("DRAIN_DELAY (s)", drain)
    note("requests in flight at SIGTERM, all 200", len(outcomes))
    note("/ready 503 after SIGTERM (s)", ready.finished - signalled)
    note("exit 0 after SIGTERM (s)", exited - signalled)
    note("bound S + DRAIN_DELAY + 2 (s)", duration + drain + 2)
    note("spans of those requests exported", len(set(trace_ids) & exported))


# --- 7. Error isolation ----------------------------------------------------------


def test_a_failing_request_does_not_disturb_the_others(
    pg_boot: Callable[..., PgService], postgres: PostgresServer, note: Note
) -> None:
    # Room for all 16 at once: this is about a failing request, not about shedding
    # (threaded workers serve WEB_THREADS - 2 at a time by default).
    pg = pg_boot(MAX_IN_FLIGHT="16", WEB_THREADS="18")
    service = pg.service
    (item_id,) = seed(service)
    # A database rule the code knows nothing about rejects one name: a bug the
    # service meets in production, not an outage.
    with postgres.connect(pg.database) as connection:
        connection.execute(
            """
            CREATE FUNCTION reject_poison() RETURNS trigger AS $$
            BEGIN
                IF NEW.name = 'poison' THEN RAISE EXCEPTION 'poisoned item'; END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER reject_poison BEFORE INSERT ON items
                FOR EACH ROW EXECUTE FUNCTION reject_poison();
            """
        )
    pg.proxy.set_mode("pass", latency=0.05)  # so that requests overlap

    def work(n: int) -> Outcome:
        if n % 4 == 0:
            return call(
                service,
                "POST",
                "/api/items",
                json={"name": "poison"},
                headers={"X-Request-ID": f"poison-{n}"},
            )
        if n % 4 == 1:
            return call(service, "POST", "/api/items", json={"name": f"fine {n}"})
        return call(service, "GET", f"/api/items/{item_id}")

    outcomes = concurrently(16, work)
    poisoned, healthy = outcomes[::4], [o for n, o in enumerate(outcomes) if n % 4]
    for n, outcome in zip(range(0, 16, 4), poisoned, strict=True):
        assert outcome.status == 500
        assert outcome.body == {
            "error": "internal_error",
            "message": outcome.body["message"],
            "request_id": f"poison-{n}",
        }
        assert "poisoned" not in str(outcome.body)
        errors = service.wait_for_log(
            lambda r, n=n: r.get("request_id") == f"poison-{n}" and r["level"] == "error"
        )
        assert len(errors) == 1 and "poisoned item" in errors[0]["exception"]
    assert all(o.status in (200, 201) for o in healthy), [o.status for o in healthy]
    note("failing requests answered 500 JSON, logged once each", len(poisoned))
    note("concurrent requests unaffected (200/201)", len(healthy))
    assert call(service, "GET", "/healthz").status == 200
    assert call(service, "GET", "/ready").status == 200


# --- 8. Several workers --------------------------------------------------------------


def test_a_killed_worker_is_replaced_and_the_counts_survive(boot: Boot, note: Note) -> None:
    service = boot(WEB_CONCURRENCY="2")
    name = "http_server_request_duration_seconds_count"
    workers = worker_pids(service)
    assert len(workers) == 2

    def served(count: int) -> list[int]:
        statuses = []
        for _ in range(count):
            statuses.append(
                call(service, "GET", "/api/items", headers={"Connection": "close"}).status
            )
        return statuses

    assert served(30) == [200] * 30
    before = total(call(service, "GET", "/metrics").body, name, http_route="/api/items")
    assert before == 30

    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    during = served(30)  # the other worker answers meanwhile
    deadline = time.monotonic() + 20
    replaced_after = None
    while time.monotonic() < deadline:
        current = worker_pids(service)
        if len(current) == 2 and victim not in current:
            replaced_after = time.monotonic() - killed
            break
        time.sleep(0.1)
    replaced = worker_pids(service)
    assert len(replaced) == 2 and victim not in replaced
    assert during == [200] * 30
    assert served(20) == [200] * 20

    text = call(service, "GET", "/metrics").body
    # The dead worker's requests still count; its gauges are gone.
    assert total(text, name, http_route="/api/items") == 30 + 30 + 20
    assert total(text, "http_server_active_requests") == 0
    assert service.process.poll() is None
    note("requests while one of 2 workers was SIGKILLed, all 200", len(during))
    note("new worker forked after (s, polled every 0.1 s)", replaced_after or -1)
    note("requests counted across workers (30+30+20)", total(text, name, http_route="/api/items"))


# --- 7. Background work --------------------------------------------------------------


def test_failing_background_work_is_logged_once_and_gives_its_connection_back(
    pg_boot: Callable[..., PgService], postgres: PostgresServer, note: Note
) -> None:
    pg = pg_boot(DB_STATEMENT_TIMEOUT="1")
    service = pg.service
    seed(service)
    wait_until_pool_idle(service)
    # The count after a write reaches the database late (network latency) and
    # finds the table locked, until PostgreSQL cancels it: a real failure of
    # the background work, after the request itself succeeded.
    pg.proxy.set_mode("pass", latency=0.3)
    request_id = rid_for("background")
    with postgres.connect(pg.database) as locker:
        created = call(
            service,
            "POST",
            "/api/items",
            json={"name": "counted later"},
            headers={"X-Request-ID": request_id},
        )
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        (failure,) = service.wait_for_log(
            lambda r: (
                r.get("event") == "background task failed" and r.get("request_id") == request_id
            ),
            timeout=15,
        )
        locker.execute("ROLLBACK")
    pg.proxy.set_mode("pass", latency=0.0)
    assert created.status == 201
    assert failure["level"] == "error"
    assert failure["task"] == "count-items"
    assert "Traceback" in failure["exception"]
    time.sleep(0.3)
    errors = [
        r
        for r in service.log_lines()
        if r.get("request_id") == request_id and r["level"] == "error"
    ]
    assert len(errors) == 1
    assert not any(
        r.get("event") == "items stored" and r.get("request_id") == request_id
        for r in service.log_lines()
    )
    wait_until_pool_idle(service)  # the connection it held is back
    note("error lines for the failed background count", len(errors))
    assert call(service, "GET", "/api/items").status == 200
    assert service.process.poll() is None


def test_sigterm_waits_for_background_work(pg_boot: Callable[..., PgService], note: Note) -> None:
    pg = pg_boot(DRAIN_DELAY="0")
    service = pg.service
    seed(service)
    wait_until_pool_idle(service)
    pg.proxy.set_mode("pass", latency=0.3)  # the count after a write takes a while
    request_id = rid_for("last-write")
    created = call(
        service, "POST", "/api/items", json={"name": "last"}, headers={"X-Request-ID": request_id}
    )
    assert created.status == 201
    service.signal(signal.SIGTERM)
    assert service.wait(timeout=30) == 0
    counted = [
        r
        for r in service.log_lines()
        if r.get("event") == "items stored" and r.get("request_id") == request_id
    ]
    assert len(counted) == 1 and counted[0]["total"] == 2
    note("background counts finished before the exit", len(counted))


def rid_for(purpose: str) -> str:
    return f"{purpose}-{uuid.uuid4().hex[:12]}"
