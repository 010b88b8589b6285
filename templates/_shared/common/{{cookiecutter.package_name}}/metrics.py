"""Prometheus metrics named after the OpenTelemetry semantic conventions.

The names and labels are the contract's (docs/contract.md, section 7), so the
kit's dashboards fit this service. With ``WEB_CONCURRENCY > 1`` gunicorn sets
``PROMETHEUS_MULTIPROC_DIR`` before the workers start, and every worker's
values are summed at scrape time (no exemplars in that mode).
"""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

# The buckets the OpenTelemetry HTTP conventions advise, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
STANDARD_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
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
db_client_connection_count = Gauge(
    "db_client_connection_count",
    "Connections of the pool, by state (idle or used).",
    ["db_client_connection_pool_name", "db_client_connection_state"],
    multiprocess_mode="livesum",
)
db_client_connection_max = Gauge(
    "db_client_connection_max",
    "Most connections the pool allows (size plus overflow).",
    ["db_client_connection_pool_name"],
    multiprocess_mode="livesum",
)
db_client_connection_pending_requests = Gauge(
    "db_client_connection_pending_requests",
    "Requests waiting for a connection from the pool.",
    ["db_client_connection_pool_name"],
    multiprocess_mode="livesum",
)
db_client_connection_timeouts = Counter(
    "db_client_connection_timeouts",
    "Requests that got no connection from the pool in time.",
    ["db_client_connection_pool_name"],
)
db_client_connection_wait_time = Histogram(
    "db_client_connection_wait_time_seconds",
    "Time it took to obtain a connection from the pool.",
    ["db_client_connection_pool_name"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def method_label(method: str) -> str:
    return method if method in STANDARD_METHODS else "_OTHER"


def observe_request(
    method: str,
    route: str,
    status: int,
    error_type: str,
    seconds: float,
    trace_id: str | None = None,
) -> None:
    child = http_server_request_duration.labels(
        method_label(method), route, str(status), error_type
    )
    if trace_id and not MULTIPROCESS:
        child.observe(seconds, exemplar={"trace_id": trace_id})
    else:
        child.observe(seconds)


def init_pool_metrics(size: int, max_overflow: int) -> None:
    """Publish the pool's bounds so the series exist before the first query."""
    db_client_connection_max.labels(POOL_NAME).set(size + max_overflow)
    set_pool_usage(used=0, idle=0)
    db_client_connection_pending_requests.labels(POOL_NAME)
    db_client_connection_timeouts.labels(POOL_NAME)
    db_client_connection_wait_time.labels(POOL_NAME)


def set_pool_usage(used: int, idle: int) -> None:
    db_client_connection_count.labels(POOL_NAME, "used").set(used)
    db_client_connection_count.labels(POOL_NAME, "idle").set(idle)


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The body and content type of a scrape, in the format the scraper asked for."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
