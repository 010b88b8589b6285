"""Prometheus metrics named after the OpenTelemetry semantic conventions.

The names and labels are the contract's (docs/contract.md, section 7), so the
kit's dashboards fit this service. With ``WEB_CONCURRENCY > 1`` gunicorn sets
``PROMETHEUS_MULTIPROC_DIR`` before the workers start, and every worker's
values are summed at scrape time (no exemplars in that mode); the runtime
metrics prometheus_client drops in that mode are provided here instead.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import re
import threading
from collections.abc import Callable, Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from . import build
from .config import service_version
from .multiprocess import MultiprocessScrape, Unsupported
from .semconv import STANDARD_METHODS, method_label

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

# The buckets the OpenTelemetry HTTP conventions advise, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
POOL_NAME = "default"

http_server_request_duration = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests.",
    ["http_request_method", "http_route", "http_response_status_code", "error_type"],
    buckets=DURATION_BUCKETS,
)
http_server_active_requests = Gauge(
    "http_server_active_requests",
    "Number of HTTP server requests in flight.",
    ["http_request_method"],
    multiprocess_mode="livesum",
)
# The load-shedding limit (MAX_IN_FLIGHT), summed over the live workers like
# the requests in flight, so a dashboard sets one against the other.
http_server_active_requests_limit = Gauge(
    "http_server_active_requests_limit",
    "Most requests served at once before load shedding (MAX_IN_FLIGHT per worker).",
    multiprocess_mode="livesum",
)
# The pool gauges are each worker's own: a pool is a worker's, and one
# worker's exhausted pool must not hide in a sum. With several workers each
# series carries the worker's ``pid`` ("liveall"), and a dead worker's go.
# OpenTelemetry's db.client.connection.count; Prometheus reserves "_count"
# for histograms and summaries, so the gauge is named for what it counts.
db_client_connections = Gauge(
    "db_client_connections",
    "Connections of the pool, by state (idle or used).",
    ["db_client_connection_pool_name", "db_client_connection_state"],
    multiprocess_mode="liveall",
)
db_client_connection_max = Gauge(
    "db_client_connection_max",
    "Most connections the pool allows (size plus overflow).",
    ["db_client_connection_pool_name"],
    multiprocess_mode="liveall",
)
db_client_connection_pending_requests = Gauge(
    "db_client_connection_pending_requests",
    "Requests waiting for a connection from the pool.",
    ["db_client_connection_pool_name"],
    multiprocess_mode="liveall",
)
db_client_connection_timeouts = Counter(
    "db_client_connection_timeouts",
    "Requests that got no connection from the pool in time.",
    ["db_client_connection_pool_name"],
)
db_client_connection_wait_time = Histogram(
    "db_client_connection_wait_time_seconds",
    "Time requests waited for a connection from the pool, obtained or timed out.",
    ["db_client_connection_pool_name"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


# Outbound calls (docs/contract.md, section 12): one observation per attempt.
http_client_request_duration = Histogram(
    "http_client_request_duration_seconds",
    "Duration of HTTP client requests (each attempt of an outbound call).",
    ["http_request_method", "server_address", "http_response_status_code", "error_type"],
    buckets=DURATION_BUCKETS,
)
outbound_deliveries = Counter(
    "outbound_deliveries",
    "Deliveries (messages sent in the background and retried) by how they ended.",
    ["delivery", "outcome"],
)


# What is running: the service's version and the kit and contract it was
# generated from, so a dashboard shows which services lag behind the kit.
service_build_info = Gauge(
    "service_build_info",
    "Always 1; the labels name the service's version and its kit and contract versions.",
    ["version", "kit_version", "contract_version"],
    multiprocess_mode="livemax",
)
service_build_info.labels(service_version(), build.KIT_VERSION, build.CONTRACT_VERSION).set(1)

_readiness: Gauge | None = None
_readiness_lock = threading.Lock()


def record_readiness(ready: bool) -> None:
    """Publish the outcome of the readiness check (``/ready``) as ``service_ready``.

    The gauge appears with the first check: before any, readiness is unknown,
    which is not the same as failing.
    """
    global _readiness
    with _readiness_lock:
        if _readiness is None:
            _readiness = Gauge(
                "service_ready",
                "1 when the last readiness check passed, 0 when it failed or the service drains.",
                multiprocess_mode="livemostrecent",
            )
    _readiness.set(1 if ready else 0)


# Children looked up once per label set. The keys are label values (route
# templates, standard methods or _OTHER), so the caches are as bounded as the
# series themselves.
@functools.cache
def _request_duration(label: str, route: str, status: int, error_type: str) -> Histogram:
    return http_server_request_duration.labels(label, route, str(status), error_type)


# What a request can fail with before any scrape has seen its series (contract,
# section 7): a counter series born at 1 is read by rate() as 0, so these
# exist at 0 from the start. A route's own failures, by the methods it
# answers; and the failures of requests no route was chosen for (refused
# before routing, or failed before it), whatever their method.
ROUTE_FAILURES = ((500, "internal_error"), (503, "database_unavailable"))
UNROUTED_FAILURES = ((500, "internal_error"), (503, "overloaded"))
METHOD_LABELS = (*sorted(STANDARD_METHODS), "_OTHER")


def init_failure_series(routes: Iterable[tuple[str, Iterable[str]]]) -> None:
    """Create, at zero, the 5xx series of ``routes`` (template, methods it answers)
    and of unrouted requests, so that the first failure of each is counted."""
    for method in METHOD_LABELS:
        for status, error_type in UNROUTED_FAILURES:
            _request_duration(method, "", status, error_type)
    for route, methods in routes:
        for method in sorted({method_label(m.upper()) for m in methods}):
            for status, error_type in ROUTE_FAILURES:
                _request_duration(method, route, status, error_type)


def publish_in_flight_limit(limit: int) -> None:
    http_server_active_requests_limit.set(limit)


@functools.cache
def _active_requests(label: str) -> Gauge:
    return http_server_active_requests.labels(label)


def active_requests(method: str) -> Gauge:
    """``http_server_active_requests`` of a request's method."""
    return _active_requests(method_label(method))


def observe_request(
    method: str,
    route: str,
    status: int,
    error_type: str,
    seconds: float,
    trace_id: str | None = None,
) -> None:
    child = _request_duration(method_label(method), route, status, error_type)
    if trace_id and not MULTIPROCESS:
        child.observe(seconds, exemplar={"trace_id": trace_id})
    else:
        child.observe(seconds)
        _gc_counts.flush()


def observe_client_request(
    method: str, server_address: str, status: int | None, error_type: str, seconds: float
) -> None:
    """One attempt of an outbound call; ``status`` is None when no answer came."""
    http_client_request_duration.labels(
        method_label(method), server_address, "" if status is None else str(status), error_type
    ).observe(seconds)


def count_delivery(delivery: str, outcome: str) -> None:
    outbound_deliveries.labels(delivery, outcome).inc()


class PoolSeries:
    """The worker's pool series, each looked up once: a request checks a
    connection out and in, and ``labels()`` costs a lock and a dict lookup each time."""

    def __init__(self) -> None:
        self.used = db_client_connections.labels(POOL_NAME, "used")
        self.idle = db_client_connections.labels(POOL_NAME, "idle")
        self.pending = db_client_connection_pending_requests.labels(POOL_NAME)
        self.timeouts = db_client_connection_timeouts.labels(POOL_NAME)
        self.wait_time = db_client_connection_wait_time.labels(POOL_NAME)
        self._read: Callable[[], tuple[int, int]] = lambda: (0, 0)
        self._usage = (0, -1, -1)
        if not MULTIPROCESS:
            # One process: its scrape reads the pool as it is, and a checkout
            # and checkin write nothing (they wrote four gauges and counted
            # the pool twice: 12.2 µs a checkout and checkin, 8.1 now, timeit).
            self.used.set_function(lambda: self._read()[0])
            self.idle.set_function(lambda: self._read()[1])

    def follow(self, read: Callable[[], tuple[int, int]]) -> None:
        """``read()`` is the worker's pool usage, ``(used, idle)``, from now on."""
        self._read = read
        self.changed()

    def changed(self) -> None:
        """The pool's usage may have changed. With several workers each one's
        usage is in its own file, which the scrape reads: it is written there,
        and only when it changed (a locked write each; a forked copy writes anew)."""
        if MULTIPROCESS:
            used, idle = self._read()
            usage = (os.getpid(), used, idle)
            if usage != self._usage:
                self._usage = usage
                self.used.set(used)
                self.idle.set(idle)


@functools.cache
def pool_series() -> PoolSeries:
    return PoolSeries()


def init_pool_metrics(size: int, max_overflow: int, usage: Callable[[], tuple[int, int]]) -> None:
    """Publish the pool's bounds so the series exist before the first query,
    and its usage, ``usage()``, from now on (``PoolSeries.follow``)."""
    db_client_connection_max.labels(POOL_NAME).set(size + max_overflow)
    pool_series().follow(usage)


class _GcCounts:
    """The ``python_gc_*`` counters in multiprocess mode, summed over the workers.

    prometheus_client's GC collector reads only the scraping process, so each
    worker adds what ``gc.get_stats()`` moved since its last flush (after each
    request and scrape; never from a GC callback, which could deadlock on the
    multiprocess files' lock).
    """

    # prometheus_client's names and help texts, so both modes expose the same series.
    KEYS = (
        ("collected", "python_gc_objects_collected", "Objects collected during gc"),
        (
            "uncollectable",
            "python_gc_objects_uncollectable",
            "Uncollectable objects found during GC",
        ),
        ("collections", "python_gc_collections", "Number of times this generation was collected"),
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen = gc.get_stats()
        self._counters = (
            {key: Counter(name, doc, ["generation"], registry=None) for key, name, doc in self.KEYS}
            if MULTIPROCESS
            else {}
        )
        for counter in self._counters.values():  # every series exists from the start
            for generation in range(len(self._seen)):
                counter.labels(str(generation))

    def flush(self) -> None:
        if not self._counters or not self._lock.acquire(blocking=False):
            return
        try:
            now = gc.get_stats()
            for generation, (current, before) in enumerate(zip(now, self._seen, strict=True)):
                for key, counter in self._counters.items():
                    if current[key] > before[key]:
                        counter.labels(str(generation)).inc(current[key] - before[key])
            self._seen = now
        finally:
            self._lock.release()


_gc_counts = _GcCounts()


class ServerProcesses(Collector):
    """The ``process_*`` metrics of the gunicorn master and of each worker, by ``pid``.

    prometheus_client has no process collector in multiprocess mode, and the
    worker answering the scrape speaks for all of them, so it reads their
    ``/proc`` entries (Linux only, as prometheus_client's own collector).
    """

    def collect(self) -> Iterable[Metric]:
        master = os.getppid()
        families: dict[str, Metric] = {}
        for pid in (master, *_children(master)):
            reader = ProcessCollector(pid=functools.partial(int, pid), registry=None)
            for family in reader.collect():
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        return list(families.values())


def _children(parent: int) -> list[int]:
    # Each of the parent's threads lists the children it forked; scanning all of
    # /proc instead read every process on the machine at every scrape.
    found: set[int] = set()
    listed = False
    try:
        tasks = os.listdir(f"/proc/{parent}/task")
    except OSError:
        tasks = []
    for task in tasks:
        try:
            with open(f"/proc/{parent}/task/{task}/children", "rb") as children:
                found.update(int(pid) for pid in children.read().split())
        except OSError:  # the thread ended, or a kernel without CONFIG_PROC_CHILDREN
            continue
        listed = True
    return sorted(found) if listed else _scanned_children(parent)


def _scanned_children(parent: int) -> list[int]:
    found: list[int] = []
    try:
        entries = list(os.scandir("/proc"))
    except OSError:
        return found
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat"), "rb") as stat:
                # "pid (comm) state ppid ...", and comm may contain spaces.
                ppid = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent:
            found.append(int(entry.name))
    return sorted(found)


@functools.cache
def _multiprocess_scrape(pid: int) -> MultiprocessScrape:  # one per worker
    return MultiprocessScrape(os.environ["PROMETHEUS_MULTIPROC_DIR"])


class ScrapePreparer(threading.Thread):
    """Keeps a worker's reader of the workers' files parsed, in the background.

    A reader parses every entry of every file once, and the worker's first
    scrape used to pay for it: 532 ms of CPU for the bench's 4 workers x 1,800
    label sets, against 10 ms once prepared (bench/scrape.py). Every ``interval``
    seconds, the first after the worker's boot, this parses what the files
    gained and, if that is many entries (a new worker's file), renders the
    lines that changed (``MultiprocessScrape.prepare``); with nothing new, a
    directory listing and a ``stat`` per file.
    """

    def __init__(self, reader: MultiprocessScrape, interval: float) -> None:
        super().__init__(name="metrics-preparer", daemon=True)
        self.reader, self.interval = reader, interval
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            # The scrape itself reports what it cannot read.
            with contextlib.suppress(OSError):
                self.reader.prepare()

    def stop(self) -> None:
        self._stopped.set()
        self.join()


def prepare_scrapes(interval: float = 1.0) -> ScrapePreparer | None:
    """In multiprocess mode, start this worker's ``ScrapePreparer`` (gunicorn's post_fork)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    preparer = ScrapePreparer(_multiprocess_scrape(os.getpid()), interval)
    preparer.start()
    return preparer


# The formats a scrape is written in (section 3 of docs/contract.md).
TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _openmetrics(registry: Collector) -> bytes:
    body: bytes = openmetrics.generate_latest(registry)  # type: ignore[no-untyped-call]
    return body


def wants_openmetrics(accept: str | None) -> bool:
    """Whether ``Accept`` takes OpenMetrics: any member of that media type with a
    non-zero quality. Its other parameters (a version) are not the client's to
    choose: the service writes OpenMetrics 1.0.0 or the text format 0.0.4, and
    says which (prometheus_client's ``choose_encoder`` echoes the client's
    version and fails on one that is not a number)."""
    for member in (accept or "").split(","):
        media_type, *parameters = member.split(";")
        if media_type.strip().lower() != "application/openmetrics-text":
            continue
        quality = next(
            (
                value.strip()
                for name, _, value in (p.partition("=") for p in parameters)
                if name.strip().lower() == "q"
            ),
            "1",
        )
        if re.fullmatch(r"(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)", quality) and float(quality) > 0:
            return True
    return False


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The body and content type of a scrape, in the format the scraper asked for."""
    encoder: Callable[[Collector], bytes]
    if wants_openmetrics(accept):
        encoder, content_type = _openmetrics, OPENMETRICS
    else:
        encoder, content_type = generate_latest, TEXT
    if not MULTIPROCESS:
        return encoder(REGISTRY), content_type
    _gc_counts.flush()
    processes = CollectorRegistry()
    processes.register(ServerProcesses())
    try:
        merged = _multiprocess_scrape(os.getpid()).render(encoder is _openmetrics)
    except Unsupported:
        MultiProcessCollector(processes)  # type: ignore[no-untyped-call]
        return encoder(processes), content_type
    # The process families come last, with OpenMetrics' "# EOF".
    return merged + encoder(processes), content_type
