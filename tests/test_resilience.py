"""Faults, for every framework: a real PostgreSQL behind a fault-injecting proxy,
real signals, real concurrent clients that classify every outcome.

S = request duration injected through the proxy, G = graceful timeout,
P = pool size + overflow, L = in-flight limit (docs/contract.md, sections 8-10).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
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

from kit.faultproxy import FaultProxy, LinkRecord
from kit.metrics import value
from kit.postgres import PROGRAMS, PostgresServer
from kit.project import Project, Service, requests_in_flight
from kit.system import require
from tests.conftest import Boot

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


# For calls that bring no client of their own: making an httpx client takes
# tens of milliseconds (its TLS context), which would count in every time
# measured here. Each call still gets a connection of its own.
_ONE_CONNECTION_EACH = httpx.Client(headers={"Connection": "close"})


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
            url = service.base_url + path
            response = _ONE_CONNECTION_EACH.request(method, url, timeout=timeout, **kwargs)
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
def pg_boot(
    boot: Boot, project: Project, postgres: PostgresServer
) -> Iterator[Callable[..., PgService]]:
    """Boot the service on its own PostgreSQL database, reached through a fault proxy.

    The release process migrates the database directly, so every connection
    through the proxy is the service's own.
    """
    proxies: list[FaultProxy] = []

    def start(**env: str) -> PgService:
        database = f"svc_{uuid.uuid4().hex[:12]}"
        project.release(DATABASE_URL=postgres.create_database(database))
        proxy = FaultProxy("127.0.0.1", postgres.port)
        proxies.append(proxy)
        service = boot(release=False, DATABASE_URL=postgres.url(database, port=proxy.port), **env)
        return PgService(service, proxy, database)

    yield start
    for proxy in proxies:
        proxy.close()


def seed(service: Service, count: int = 1) -> list[int]:
    """Store ``count`` items, and wait for the counts their writes start in the
    background, so that no connection is in use afterwards."""
    ids = []
    for n in range(count):
        request_id = rid_for("seed")
        response = httpx.post(
            service.base_url + "/api/items",
            json={"name": f"seed {n}"},
            headers={"X-Request-ID": request_id},
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])

        def stored(r: dict[str, Any], rid: str = request_id) -> bool:
            return r.get("event") == "items stored" and r["request_id"] == rid

        service.wait_for_log(stored)
    return ids


def wait_until_pool_idle(service: Service, timeout: float = 10) -> None:
    """Until no pooled connection is in use (work a request started after its response)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = call(service, "GET", "/metrics").body
        if value(text, "db_client_connections", db_client_connection_state="used") == 0:
            return
        time.sleep(0.05)
    raise AssertionError("the pool still has connections in use")


def assert_unavailable(outcome: Outcome, within: float | None = None) -> None:
    assert outcome.status == 503, outcome
    assert outcome.body["error"] == "database_unavailable", outcome.body
    assert outcome.headers is not None and int(outcome.headers["retry-after"]) >= 1
    if within is not None:
        assert outcome.seconds < within, outcome.seconds


# --- 2. Database down --------------------------------------------------------------


def keepalive_timers(port: int) -> list[int]:
    """The kernel's timer kind for each established connection to 127.0.0.1:``port``
    (``/proc/net/tcp``, column ``tr``: 2 is the keepalive timer, 0 none)."""
    timers = []
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            remote, state, timer = fields[2], fields[3], fields[5].split(":")[0]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                timers.append(int(timer, 16))
    return timers


# refuse: the database is down; blackhole: its host is gone, packets dropped,
# open connections silent; reset: something on the way resets every connection.
def lock_waits(postgres: PostgresServer, database: str) -> int:
    """Statements on ``database`` waiting for a lock."""
    with postgres.connect() as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("mode", ["refuse", "blackhole", "reset"])
def test_database_outage_is_a_fast_503_and_recovery_needs_no_restart(
    pg_boot: Callable[..., PgService], postgres: PostgresServer, mode: str, note: Note
) -> None:
    connect_timeout, statement_timeout, ready_timeout = 2.0, 1.0, 1.0
    pg = pg_boot(
        DB_CONNECT_TIMEOUT=str(connect_timeout),
        DB_STATEMENT_TIMEOUT=str(statement_timeout),
        READY_TIMEOUT=str(ready_timeout),
    )
    service = pg.service
    (item_id,) = seed(service)
    workers_before = worker_pids(service)
    assert call(service, "GET", f"/api/items/{item_id}").status == 200
    wait_until_pool_idle(service)
    time.sleep(0.1)  # past the delayed acknowledgements
    # libpq's keepalives probe every pooled connection, so on a real network
    # one whose peer vanished is closed before a request picks it.
    timers = keepalive_timers(pg.proxy.port)
    assert timers and set(timers) == {2}, timers

    # A request's statement is under way (a lock holds it) when the database
    # goes away: in a blackhole its answer never comes.
    with postgres.connect(pg.database) as locker:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(call, service, "GET", f"/api/items/{item_id}")
            deadline = time.monotonic() + 10
            while not lock_waits(postgres, pg.database):
                assert time.monotonic() < deadline, "the request's statement never reached the lock"
                time.sleep(0.01)
            outage = time.monotonic()
            pg.proxy.set_mode(mode)
            # Every probe runs its own check: the first one after the outage
            # began reports it, so readiness turns within one probe period.
            ready = call(service, "GET", "/ready")
            cut_off = waiting.result()
        locker.execute("ROLLBACK")
    assert ready.status == 503 and ready.body["checks"]["database"]["status"] == "error"
    assert ready.finished - outage < ready_timeout + 0.5
    # The statement's deadline: the server's statement timeout, then the
    # connect timeout for the network.
    assert_unavailable(cut_off)
    assert cut_off.finished - outage < statement_timeout + connect_timeout + 1

    slowest = 0.0
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/api/items/{item_id}", {}),
        ("GET", "/api/items", {}),
        ("POST", "/api/items", {"json": {"name": "during outage"}}),
    ]
    for method, path, kwargs in attempts:
        outcome = call(service, method, path, **kwargs)
        assert_unavailable(outcome, within=connect_timeout + 1)
        slowest = max(slowest, outcome.seconds)
    healthz = call(service, "GET", "/healthz")
    assert (healthz.status, healthz.seconds < 0.5) == (200, True)
    note("DB_CONNECT_TIMEOUT / DB_STATEMENT_TIMEOUT / READY_TIMEOUT (s)", "2 / 1 / 1")
    note("503 for the statement under way, after the outage began (s)", cut_off.finished - outage)
    note("first /ready 503 after the outage began (s)", ready.finished - outage)
    note("slowest 503 of 3 DB requests during the outage (s)", slowest)
    note("/healthz during outage (s)", healthz.seconds)

    pg.proxy.set_mode("pass")
    returned = time.monotonic()
    with service.client() as client:  # one keep-alive connection, as a load balancer keeps
        first = client.get(f"/api/items/{item_id}")
        recovered = time.monotonic() - returned
        statuses = [client.get(f"/api/items/{item_id}").status_code for _ in range(99)]
        all_served = time.monotonic() - returned
    # Serving again within 2 s, and not by luck: the next 99 in a row succeed.
    # (How fast 100 sequential requests go is the machine's speed, not recovery.)
    assert first.status_code == 200 and recovered < 2.0
    assert statuses == [200] * 99
    note("first 200 after the database returned (s)", recovered)
    note("100 consecutive 200s done after (s)", all_served)
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


def test_a_connection_given_back_moments_ago_is_reused_unchecked(
    pg_boot: Callable[..., PgService], note: Note
) -> None:
    # The pool's check before reuse is a round trip (the empty query ";");
    # within 0.5 s of its return a connection skips it (contract, section 10).
    pg = pg_boot(WEB_CONCURRENCY="1")
    service = pg.service
    (item_id,) = seed(service)
    wait_until_pool_idle(service)

    def sent(query: str) -> int:
        return sum(link.queries[query] for link in pg.proxy.links())

    def read() -> None:
        assert call(service, "GET", f"/api/items/{item_id}").status == 200

    time.sleep(0.6)
    read()  # the connection was idle: checked
    checks = sent(";")
    for _ in range(20):  # back to back: each takes the connection the last gave back
        read()
    unchecked_burst = sent(";") - checks
    # An idle connection is checked again; a readiness refresh (SELECT 1)
    # during the pause would have used it, so such a pause does not count.
    for _ in range(3):
        probes, checks = sent("SELECT 1"), sent(";")
        time.sleep(0.8)
        read()
        if sent("SELECT 1") == probes:
            break
    checked_after_pause = sent(";") - checks
    note("checks in 20 back-to-back reads", unchecked_burst)
    assert unchecked_burst <= 1, unchecked_burst  # a readiness refresh may take it once
    assert checked_after_pause == 1


# --- 4. Pool exhaustion ------------------------------------------------------------


# With a second per round trip, a request holds its connection past
# DB_POOL_TIMEOUT however few round trips it makes; opening a connection takes
# three of them, which DB_CONNECT_TIMEOUT must allow.
SLOW_ROUND_TRIP, SLOW_CONNECT = 1.0, 10


POOL_GAUGES = {
    "used": ("db_client_connections", {"db_client_connection_state": "used"}),
    "idle": ("db_client_connections", {"db_client_connection_state": "idle"}),
    "pending": ("db_client_connection_pending_requests", {}),
}


def pool_gauges(service: Service) -> dict[str, float]:
    """The pool gauges one scrape reads, each summed over the workers."""
    text = call(service, "GET", "/metrics").body
    return {key: value(text, name, **labels) for key, (name, labels) in POOL_GAUGES.items()}


def settled_pool_gauges(service: Service, expected: dict[str, float]) -> dict[str, float]:
    """The pool gauges once they read ``expected``, or as last read after 5 s (a
    readiness check the worker runs on its own holds a connection briefly)."""
    deadline = time.monotonic() + 5
    while (read := pool_gauges(service)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return read


@contextlib.contextmanager
def peak_pool_gauges(service: Service) -> Iterator[dict[str, float]]:
    """The highest value each pool gauge read in scrapes taken every 50 ms
    while the block runs, filled in when it ends."""
    peaks = dict.fromkeys(POOL_GAUGES, 0.0)
    done = threading.Event()

    def scrape() -> None:
        while not done.wait(0.05):
            for key, read in pool_gauges(service).items():
                peaks[key] = max(peaks[key], read)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        yield peaks
    finally:
        done.set()
        scraper.join()


def exhaust_pool(
    pg: PgService, postgres: PostgresServer, requests: int, item_id: int
) -> tuple[list[Outcome], int, float, dict[str, float]]:
    """``requests`` concurrent slow reads: their outcomes, the peak of the
    service's connections, the increase of its pool timeouts counter and the
    peaks its pool gauges read meanwhile."""
    service = pg.service
    wait_until_pool_idle(service)
    timeouts = "db_client_connection_timeouts_total"
    before = value(call(service, "GET", "/metrics").body, timeouts)
    pg.proxy.set_mode("pass", latency=SLOW_ROUND_TRIP)
    with postgres.sampling(pg.database) as connections, peak_pool_gauges(service) as gauges:
        outcomes = concurrently(requests, lambda _: call(service, "GET", f"/api/items/{item_id}"))
    pg.proxy.set_mode("pass", latency=0.0)
    after = value(call(service, "GET", "/metrics").body, timeouts)
    return outcomes, connections.peak, after - before, gauges


def test_pool_exhaustion_answers_the_excess_with_503_in_time(
    pg_boot: Callable[..., PgService], postgres: PostgresServer, note: Note
) -> None:
    size, overflow, pool_timeout, extra = 2, 1, 1.0, 3
    pg = pg_boot(
        DB_POOL_SIZE=str(size),
        DB_MAX_OVERFLOW=str(overflow),
        DB_POOL_TIMEOUT=str(pool_timeout),
        DB_CONNECT_TIMEOUT=str(SLOW_CONNECT),
    )
    service = pg.service
    (item_id,) = seed(service)
    outcomes, peak, timeouts, gauges = exhaust_pool(pg, postgres, size + overflow + extra, item_id)

    served = [o for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status == 503]
    assert (len(served), len(refused)) == (size + overflow, extra), [
        (o.status, o.seconds) for o in outcomes
    ]
    for outcome in refused:
        assert_unavailable(outcome, within=pool_timeout + 0.5)
    assert min(o.seconds for o in served) > pool_timeout + 0.5  # the slow ones really held the pool
    # The sampler saw the pool full, and never more than full.
    assert peak == size + overflow
    assert timeouts == extra
    # The pool gauges read the pool as it was: connections in use, never more
    # than it holds, and the excess waiting (pending counts the requests whose
    # connection is still being opened too); then every connection back, the
    # overflow's closed.
    assert 1 <= gauges["used"] <= size + overflow, gauges
    assert extra <= gauges["pending"] <= size + overflow + extra, gauges
    settled: dict[str, float] = {"used": 0, "idle": size, "pending": 0}
    assert settled_pool_gauges(service, settled) == settled
    note("P = DB_POOL_SIZE + DB_MAX_OVERFLOW", size + overflow)
    note("concurrent slow requests", size + overflow + extra)
    note("served 200", len(served))
    note("slowest served (s)", max(o.seconds for o in served))
    note("refused 503", len(refused))
    note("slowest 503 (s), DB_POOL_TIMEOUT 1 s", max(o.seconds for o in refused))
    note("peak connections in pg_stat_activity", peak)
    note("db_client_connection_timeouts_total increase", timeouts)
    assert all(call(service, "GET", f"/api/items/{item_id}").status == 200 for _ in range(10))


def worker_connections(service: Service, per_worker: int) -> list[http.client.HTTPConnection]:
    """Keep-alive connections, ``per_worker`` held by each worker.

    The kernel hands a new connection to whichever worker accepts first, so
    connections are opened until each worker has its share; which worker
    holds one is read from /proc (the worker's socket and the client's port).
    """
    workers = worker_pids(service)
    held: dict[int, list[http.client.HTTPConnection]] = {pid: [] for pid in workers}
    deadline = time.monotonic() + 30  # a worker that was just forked may still be booting
    while time.monotonic() < deadline:
        if all(len(mine) >= per_worker for mine in held.values()):
            break
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        assert response.status == 200 and connection.sock is not None
        owner = _owner(service.port, connection.sock.getsockname()[1], workers)
        if len(held[owner]) < per_worker:
            held[owner].append(connection)
        else:
            connection.close()
            time.sleep(0.01)
    assert all(len(mine) == per_worker for mine in held.values()), {
        pid: len(mine) for pid, mine in held.items()
    }
    return [connection for mine in held.values() for connection in mine]


def _owner(port: int, client_port: int, workers: set[int]) -> int:
    """The worker holding the server side of the connection from ``client_port``."""
    # A set: the kernel can list a socket twice while others come and go as the
    # table is read; inode 0 is a connection no process holds (TIME_WAIT).
    with open("/proc/net/tcp") as table:
        next(table)
        inodes = {
            fields[9]
            for fields in (line.split() for line in table)
            if int(fields[1].rsplit(":", 1)[1], 16) == port
            and int(fields[2].rsplit(":", 1)[1], 16) == client_port
            and fields[9] != "0"
        }
    assert len(inodes) == 1, inodes
    (inode,) = inodes
    for pid in workers:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def get_on(connection: http.client.HTTPConnection, path: str) -> Outcome:
    started = time.monotonic()
    connection.request("GET", path)
    response = connection.getresponse()
    body = json.loads(response.read())
    headers = {name.lower(): value for name, value in response.getheaders()}
    return Outcome(started, time.monotonic(), response.status, None, body, headers)


def test_each_worker_has_its_own_bounded_pool(
    pg_boot: Callable[..., PgService], postgres: PostgresServer, note: Note
) -> None:
    workers, size, overflow, pool_timeout, extra = 2, 2, 1, 1.0, 2
    pool = size + overflow
    pg = pg_boot(
        WEB_CONCURRENCY=str(workers),
        DB_POOL_SIZE=str(size),
        DB_MAX_OVERFLOW=str(overflow),
        DB_POOL_TIMEOUT=str(pool_timeout),
        DB_CONNECT_TIMEOUT=str(SLOW_CONNECT),
    )
    service = pg.service
    (item_id,) = seed(service)
    connections = worker_connections(service, per_worker=pool + extra)
    wait_until_pool_idle(service)
    timeouts = "db_client_connection_timeouts_total"
    before = value(call(service, "GET", "/metrics").body, timeouts)
    pg.proxy.set_mode("pass", latency=SLOW_ROUND_TRIP)
    with (
        postgres.sampling(pg.database) as sampled,
        peak_pool_gauges(service) as gauges,
        concurrent.futures.ThreadPoolExecutor(max_workers=len(connections)) as threads,
    ):
        outcomes = list(threads.map(lambda c: get_on(c, f"/api/items/{item_id}"), connections))
    pg.proxy.set_mode("pass", latency=0.0)
    for connection in connections:
        connection.close()
    increase = value(call(service, "GET", "/metrics").body, timeouts) - before
    # Each worker's gauges read its own pool, summed: as in
    # test_pool_exhaustion_answers_the_excess_with_503_in_time.
    assert 1 <= gauges["used"] <= workers * pool, gauges
    assert workers * extra <= gauges["pending"] <= len(connections), gauges
    settled: dict[str, float] = {"used": 0, "idle": workers * size, "pending": 0}
    assert settled_pool_gauges(service, settled) == settled

    # Each worker served a full pool's worth at once and refused the rest.
    served = [o for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status != 200]
    assert (len(served), len(refused)) == (workers * pool, workers * extra), [
        (o.status, o.seconds) for o in outcomes
    ]
    for outcome in refused:
        assert_unavailable(outcome, within=pool_timeout + 0.5)
    assert sampled.peak == workers * pool
    assert increase == workers * extra  # counted across workers
    note("WEB_CONCURRENCY x P", f"{workers} x {pool}")
    note("slow requests at once, P + 2 on each worker", len(connections))
    note("served 200 / refused 503", f"{len(served)} / {len(refused)}")
    note("peak connections in pg_stat_activity", sampled.peak)
    note("db_client_connection_timeouts_total increase, all workers", increase)


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
    logged = len(postgres.log_text())
    # Lock contention, a real cause of slow statements: the service's SELECT waits.
    with postgres.connect(pg.database) as locker:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        outcome = call(service, "GET", "/api/items")
        locker.execute("ROLLBACK")
    assert_unavailable(outcome, within=limit + 0.5)
    assert outcome.seconds >= limit * 0.9
    # PostgreSQL itself cancelled it (SQLSTATE 57014), not the service.
    cancelled = "ERROR:  57014: canceling statement due to statement timeout"
    assert postgres.log_text()[logged:].count(cancelled) == 1, postgres.log_text()[logged:]
    note("DB_STATEMENT_TIMEOUT (s)", limit)
    note("503 after (s)", outcome.seconds)
    assert call(service, "GET", "/api/items").status == 200
    assert backends() == before  # the same connection served the next request


# --- 6. Load shedding --------------------------------------------------------------

# A refusal "at once" by the client's clock. The service takes well under
# 50 ms (its own clock says so, below); the rest
# is the client's: up to 20 Python threads here share one interpreter lock on
# two busy cores, each waiting for the others' request building and parsing,
# and the slowest of 520 also meets the odd scheduler or GC pause (0.51 s seen
# on a loaded 2-core machine). A request that queued instead would wait for a
# held slot, and those are held until the whole burst is over: many seconds.
AT_ONCE = 2.0
REFUSED_AT_MOST = 0.5


def test_requests_beyond_the_in_flight_limit_are_shed_at_once(boot: Boot, note: Note) -> None:
    limit, extra, burst_clients, burst_each = 2, 20, 10, 50
    # The slots are held by requests waiting for the database, which lets them
    # wait long enough (DB_STATEMENT_TIMEOUT) for everything below.
    service = boot(MAX_IN_FLIGHT=str(limit), DB_STATEMENT_TIMEOUT="60")
    holding = contextlib.ExitStack()
    held = holding.enter_context(requests_in_flight(service, limit))
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

    # Then a burst of 500 more, while the probes are polled.
    probes: list[Outcome] = []
    bursting = threading.Event()

    def poll_probes() -> None:
        while not bursting.is_set():
            for path in ("/healthz", "/ready", "/metrics"):
                probes.append(call(service, "GET", path, timeout=5))

    prober = threading.Thread(target=poll_probes)
    prober.start()
    burst = [
        outcome
        for batch in concurrently(
            burst_clients, lambda n: _many(service, burst_each, f"{marker}-b{n}")
        )
        for outcome in batch.body
    ]
    bursting.set()
    prober.join()
    holding.close()

    # They held the slots throughout.
    assert [r.status_code for r in held.responses] == [201] * limit
    for outcome in shed + burst:
        assert outcome.status == 503, outcome
        assert outcome.body["error"] == "overloaded"
        assert outcome.headers is not None and outcome.headers["retry-after"] == "1"
        assert outcome.seconds < AT_ONCE, outcome
    # The service's own clock: every refusal well within 50 ms.
    refusals = extra + burst_clients * burst_each
    lines = service.wait_for_log(
        lambda r: str(r.get("request_id", "")).startswith(marker), refusals
    )
    assert len(lines) == refusals
    assert all(line["http_status"] == 503 for line in lines)
    # By the service's clock: 99 in 100 refusals within 50 ms, and the slowest
    # within REFUSED_AT_MOST, for a worker that the other test processes on a
    # busy 2-core machine can preempt (56 ms seen once in 520). A refusal that
    # waited for a slot would take seconds: the slots are held past the burst.
    durations = sorted(line["duration_ms"] for line in lines)
    assert durations[len(durations) * 99 // 100] < 50, durations[-10:]
    assert durations[-1] < REFUSED_AT_MOST * 1000, f"a refusal took {durations[-1]} ms"
    # Probes kept answering during the burst.
    assert len(probes) >= 3 and all(p.status == 200 and p.seconds < 1 for p in probes), probes
    # 520 refusals later the worker has not grown: nothing is queued or kept.
    grown = rss_kib(worker) - rss_before
    assert grown < 5 * 1024
    shed_count = value(
        call(service, "GET", "/metrics").body,
        "http_server_request_duration_seconds_count",
        http_response_status_code="503",
        error_type="overloaded",
    )
    assert shed_count == extra + burst_clients * burst_each
    assert call(service, "GET", "/api/items").status == 200
    for client in clients:
        client.close()
    note("MAX_IN_FLIGHT", limit)
    note("slowest 503 by the service's clock (ms)", max(r["duration_ms"] for r in lines))
    note("20 at once: slowest 503 by the client's clock (s)", max(o.seconds for o in shed))
    note("burst of 500: slowest 503 by the client's clock (s)", max(o.seconds for o in burst))
    note("probes answered during the burst", len(probes))
    note("slowest probe during the burst (s)", max(p.seconds for p in probes))
    note("worker memory growth after 520 refusals (KiB)", grown)


def _many(service: Service, count: int, request_ids: str) -> Outcome:
    """``count`` GETs, one after another on one connection; the outcomes in ``body``."""
    started = time.monotonic()
    with service.client() as client:
        outcomes = [
            call(
                service,
                "GET",
                "/api/items",
                client=client,
                headers={"X-Request-ID": f"{request_ids}-{n}"},
            )
            for n in range(count)
        ]
    return Outcome(started, time.monotonic(), 0, body=outcomes)


# --- 1. Graceful shutdown with database work in flight -------------------------------------


def test_sigterm_lets_database_requests_in_flight_finish(
    pg_boot: Callable[..., PgService], note: Note
) -> None:
    drain = 1.0
    # The SDK's default export schedule (5 s) is longer than the shutdown
    # takes: the spans of the requests in flight reach the sink only if the
    # worker flushes them on its way out.
    pg = pg_boot(DRAIN_DELAY=str(drain), OTEL_BSP_SCHEDULE_DELAY="5000")
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
        # Before the signal: the master may start its drain timer before this
        # thread runs again (a listener seen closed 0.9998 s after a timestamp
        # taken after the signal).
        signalled = time.monotonic()
        service.signal(signal.SIGTERM)
        # A probe sent in the same instant may still be answered as before the
        # signal; from the master's word on, readiness says draining.
        service.wait_for_output("SIGTERM: draining")
        ready = call(service, "GET", "/ready", timeout=1)
        # Liveness, polled on new connections until the listener closes.
        probes = service.poll("/healthz", until=signalled + drain + 5)
        outcomes = [future.result() for future in futures]
        status = service.wait(timeout=duration + drain + 2)
        exited = time.monotonic()

    # Readiness turns at once, by the client's clock.
    assert ready.status == 503 and ready.body["status"] == "draining", ready
    # At once, long before the drain ends (0.11 s was seen under a loaded CI run).
    assert ready.finished - signalled < 0.25
    # Liveness answers 200 for as long as the listener is open (DRAIN_DELAY);
    # then connections are refused, never left hanging.
    answered, closed_at = listener_closed(probes)
    assert closed_at - signalled >= drain
    assert status == 0
    assert exited - signalled < duration + drain + 2
    for outcome in outcomes:
        assert outcome.status == 200, outcome
        assert outcome.body == {"id": item_id, "name": "seed 0"}

    # No span of those requests is lost: server and database spans alike.
    assert service.sink is not None
    spans = service.sink.snapshot()
    for trace_id in trace_ids:
        kinds = {s.kind for s in spans if s.trace_id == trace_id}
        assert {"SERVER", "CLIENT"} <= kinds, (trace_id, kinds)

    # The pool was disposed after the last query: every connection of the
    # service ended with PostgreSQL's Terminate message (a killed process sends
    # none), each after the last answer the database sent.
    links = settled_links(pg.proxy)
    assert links and all(link.graceful for link in links), links
    last_answer = max(link.last_answer or 0.0 for link in links)
    open_at_sigterm = [link for link in links if (link.closed or 0.0) > signalled]
    assert open_at_sigterm, links
    first_terminate = min(link.terminated or 0.0 for link in open_at_sigterm)
    assert first_terminate > last_answer > signalled
    note("S, one request through the slowed database (s)", duration)
    note("DRAIN_DELAY (s)", drain)
    note("requests in flight at SIGTERM, all 200", len(outcomes))
    note("/ready 503 after SIGTERM (s)", ready.finished - signalled)
    note("/healthz 200s while draining, then refused", answered)
    note("listener closed after SIGTERM (s)", closed_at - signalled)
    note("exit 0 after SIGTERM (s)", exited - signalled)
    note("bound S + DRAIN_DELAY + 2 (s)", duration + drain + 2)
    note("traces with server and database spans exported", len(trace_ids))
    note("connections closed with Terminate", len(links))
    note("first Terminate after the last query's answer (s)", first_terminate - last_answer)


def listener_closed(probes: list[tuple[float, int | str]]) -> tuple[int, float]:
    """Probes of a draining service: 200s, then refusals; between them at most
    one reset, a connection made in the instant the listener closed (the
    kernel resets what still waits to be accepted). The number of 200s, and
    when the first refusal came."""
    statuses = [status for _, status in probes]
    assert statuses[-1] == "refused", statuses
    answered = statuses[:-2] if statuses[-2:-1] == ["reset"] else statuses[:-1]
    assert answered and set(answered) == {200}, statuses
    return len(answered), probes[-1][0]


def settled_links(proxy: FaultProxy, timeout: float = 5.0) -> list[LinkRecord]:
    """The proxy's session connections once all are closed (the proxy sees a
    dead process's connections close a moment after it exits)."""
    deadline = time.monotonic() + timeout
    while True:
        links = [link for link in proxy.links() if link.kind == "session"]
        if all(link.closed for link in links) or time.monotonic() > deadline:
            return links
        time.sleep(0.05)


# --- 7. Error isolation ----------------------------------------------------------


def test_a_failing_request_does_not_disturb_the_others(
    pg_boot: Callable[..., PgService], postgres: PostgresServer, note: Note
) -> None:
    # Room for all 16 at once: this is about a failing request, not about shedding
    # (threaded workers serve WEB_THREADS - 2 at a time by default).
    pg = pg_boot(MAX_IN_FLIGHT="16", WEB_THREADS="18")
    service = pg.service
    (item_id,) = seed(service)
    workers = worker_pids(service)
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

        def logged(r: dict[str, Any], n: int = n) -> bool:
            return r.get("request_id") == f"poison-{n}" and r["level"] == "error"

        errors = service.wait_for_log(logged)
        assert len(errors) == 1 and "poisoned item" in errors[0]["exception"]
    assert all(o.status in (200, 201) for o in healthy), [o.status for o in healthy]
    note("failing requests answered 500 JSON, logged once each", len(poisoned))
    note("concurrent requests unaffected (200/201)", len(healthy))
    assert call(service, "GET", "/healthz").status == 200
    assert call(service, "GET", "/ready").status == 200
    assert worker_pids(service) == workers  # the process that failed them serves on


# --- 8. Several workers --------------------------------------------------------------


def test_a_killed_worker_is_replaced_and_the_counts_survive(boot: Boot, note: Note) -> None:
    size, overflow = 2, 1
    service = boot(WEB_CONCURRENCY="2", DB_POOL_SIZE=str(size), DB_MAX_OVERFLOW=str(overflow))
    name = "http_server_request_duration_seconds_count"
    bound = "db_client_connection_max"
    workers = worker_pids(service)
    assert len(workers) == 2

    def served(count: int) -> list[int | None]:
        statuses = []
        for _ in range(count):
            statuses.append(
                call(service, "GET", "/api/items", headers={"Connection": "close"}).status
            )
        return statuses

    assert served(30) == [200] * 30
    text = metrics_of_every_worker(service)
    assert value(text, name, http_route="/api/items") == 30
    assert value(text, bound) == 2 * (size + overflow)

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

    text = metrics_of_every_worker(service)
    # The dead worker's requests still count; its gauges are gone: the pool
    # bound is the two live workers' (a dead worker's left behind would make
    # it three pools' worth).
    assert value(text, name, http_route="/api/items") == 30 + 30 + 20
    assert value(text, bound) == 2 * (size + overflow)
    assert service.process.poll() is None
    note("requests while one of 2 workers was SIGKILLed, all 200", len(during))
    note("new worker forked after (s, polled every 0.1 s)", replaced_after or -1)
    note("requests counted across workers (30+30+20)", value(text, name, http_route="/api/items"))
    note("db_client_connection_max after, 2 workers x (2 + 1)", value(text, bound))


def metrics_of_every_worker(service: Service) -> str:
    """The exposition once every worker serves, so each has published its pool."""
    for connection in worker_connections(service, per_worker=1):
        connection.close()
    return str(call(service, "GET", "/metrics").body)


# --- 7. Background work --------------------------------------------------------------


def test_failing_background_work_is_logged_once_and_gives_its_connection_back(
    pg_boot: Callable[..., PgService], postgres: PostgresServer, note: Note
) -> None:
    # One connection in the pool: if the failed work kept it, the next request
    # would find none (503 after DB_POOL_TIMEOUT).
    pg = pg_boot(DB_STATEMENT_TIMEOUT="1", DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0")
    service = pg.service
    seed(service)
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
    wait_until_pool_idle(service)  # the pool's own account: the connection is back
    following = call(service, "GET", "/api/items")
    assert following.status == 200, following  # and the only connection serves
    assert service.process.poll() is None
    note("error lines for the failed background count", len(errors))
    note("next request on the pool's only connection (s)", following.seconds)


def test_sigterm_waits_for_background_work(pg_boot: Callable[..., PgService], note: Note) -> None:
    pg = pg_boot(DRAIN_DELAY="0")
    service = pg.service
    seed(service)
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
