"""Database pool: connections in use, idle and allowed, waiting, wait time, timeouts."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from ..panels import RATE, REQUESTS, Query, dashboard, graph, named_routes, sel, single

USED = 'db_client_connection_state="used"'
WAIT = "db_client_connection_wait_time_seconds"
UNAVAILABLE = 'error_type="database_unavailable"'


def _wait_quantile(q: float) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({WAIT}_bucket{sel()}[{RATE}])))"


def build() -> Dashboard:
    timeouts = f"sum(rate(db_client_connection_timeouts_total{sel()}[{RATE}]))"
    unavailable = f"rate({REQUESTS}_count{sel(UNAVAILABLE)}[{RATE}])"
    return dashboard(
        "kit-database-pool",
        "Database pool",
        "The services' database connection pools (the pool is 'default'; figures are "
        "summed over workers and instances).",
        [
            [
                single(
                    "Pool utilisation",
                    "Connections in use as a share of the most the pools allow "
                    "(DB_POOL_SIZE + DB_MAX_OVERFLOW per worker).",
                    "percentunit",
                    Query(
                        f"sum(db_client_connections{sel(USED)})"
                        f" / sum(db_client_connection_max{sel()})",
                        "utilisation",
                    ),
                    steps=[(None, "green"), (0.75, "orange"), (0.9, "red")],
                ),
                single(
                    "Connections in use",
                    "Connections checked out of the pools right now.",
                    "short",
                    Query(f"sum(db_client_connections{sel(USED)})", "used"),
                ),
                single(
                    "Waiting for a connection",
                    "Requests waiting for a pooled connection right now.",
                    "short",
                    Query(f"sum(db_client_connection_pending_requests{sel()})", "pending"),
                    steps=[(None, "green"), (1, "orange")],
                ),
                single(
                    "Pool timeouts",
                    "Requests per second that got no connection within DB_POOL_TIMEOUT "
                    "(each is answered 503 database_unavailable).",
                    "reqps",
                    Query(timeouts, "timeouts"),
                    steps=[(None, "green"), (0.001, "red")],
                ),
                single(
                    "503 database_unavailable",
                    "Requests per second answered 503 because of the database: unreachable, "
                    "pool timeout or statement timeout.",
                    "reqps",
                    Query(f"sum({unavailable}) or vector(0)", "503"),
                    steps=[(None, "green"), (0.001, "red")],
                ),
                single(
                    "Wait p99",
                    "99th percentile of the time requests waited for a connection.",
                    "s",
                    Query(_wait_quantile(0.99), "p99"),
                    steps=[(None, "green"), (0.1, "orange"), (1, "red")],
                ),
            ],
            [
                graph(
                    "Connections: used, idle and max",
                    "Pooled connections by state, and the most the pools allow. Used "
                    "reaching max means requests start to wait.",
                    "short",
                    Query(
                        f"sum by (db_client_connection_state) (db_client_connections{sel()})",
                        "{{db_client_connection_state}}",
                    ),
                    Query(f"sum(db_client_connection_max{sel()})", "max"),
                ),
                graph(
                    "Requests waiting for a connection",
                    "Requests waiting for a pooled connection, by instance.",
                    "short",
                    Query(
                        f"sum by (instance) (db_client_connection_pending_requests{sel()})",
                        "{{instance}}",
                    ),
                ),
            ],
            [
                graph(
                    "Connection wait time",
                    "How long requests waited for a connection: p50 and p99.",
                    "s",
                    Query(_wait_quantile(0.5), "p50"),
                    Query(_wait_quantile(0.99), "p99"),
                ),
                graph(
                    "Checkouts and timeouts",
                    "Connections handed out per second, and requests per second that "
                    "timed out waiting for one.",
                    "ops",
                    Query(f"sum(rate({WAIT}_count{sel()}[{RATE}]))", "checkouts"),
                    Query(timeouts, "timeouts"),
                ),
            ],
            [
                graph(
                    "503 database_unavailable by route",
                    "Requests per second answered 503 database_unavailable, by route.",
                    "reqps",
                    Query(
                        named_routes(f"sum by (http_route) ({unavailable})"),
                        "{{http_route}}",
                    ),
                    width=24,
                ),
            ],
        ],
    )
