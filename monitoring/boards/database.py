"""Database pool: connections in use, idle and allowed, waiting, wait time, timeouts.

A pool is one worker's (contract, section 7: with several workers each pool
series has the worker's ``pid``). Totals add the workers up; saturation is
the fullest worker's, since one worker's exhausted pool makes its requests
wait however idle the others are.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from ..panels import RATE, REQUESTS, Query, dashboard, graph, named_routes, sel, single
from ..rules import DATABASE

STATE = "db_client_connection_state"
USED = f'{STATE}="used"'
WAIT = "db_client_connection_wait_time_seconds"
UNAVAILABLE = 'error_type="database_unavailable"'


def _wait_quantile(q: float) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({WAIT}_bucket{sel()}[{RATE}])))"


def _fullest(by: str = "") -> str:
    """The share of its pool the fullest worker uses."""
    grouping = f" by ({by})" if by else ""
    return (
        f"max{grouping} (db_client_connections{sel(USED)}"
        f" / ignoring ({STATE}) db_client_connection_max{sel()})"
    )


def build() -> Dashboard:
    timeouts = f"sum(rate(db_client_connection_timeouts_total{sel()}[{RATE}]))"
    unavailable = f"rate({REQUESTS}_count{sel(UNAVAILABLE)}[{RATE}])"
    return dashboard(
        DATABASE,
        "Database pool",
        "The service's database connection pools, one per worker (the pool is "
        "'default'): totals are summed over workers and instances, saturation is the "
        "fullest worker's.",
        [
            [
                single(
                    "Fullest pool",
                    "Connections in use as a share of what its pool allows "
                    "(DB_POOL_SIZE + DB_MAX_OVERFLOW), in the fullest worker: at 100% its "
                    "requests wait, however idle the other workers' pools are.",
                    "percentunit",
                    Query(_fullest(), "fullest"),
                    steps=[(None, "green"), (0.75, "orange"), (0.9, "red")],
                ),
                single(
                    "Connections in use",
                    "Connections checked out of the pools right now, all workers together.",
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
                    "99th percentile of the time requests waited for a connection, those "
                    "that timed out included.",
                    "s",
                    Query(_wait_quantile(0.99), "p99"),
                    steps=[(None, "green"), (0.1, "orange"), (1, "red")],
                ),
            ],
            [
                graph(
                    "Connections: used, idle and max",
                    "Pooled connections by state, and the most the pools allow, all "
                    "workers together.",
                    "short",
                    Query(
                        f"sum by ({STATE}) (db_client_connections{sel()})",
                        f"{{{{{STATE}}}}}",
                    ),
                    Query(f"sum(db_client_connection_max{sel()})", "max"),
                ),
                graph(
                    "Fullest pool by instance",
                    "The share of its pool the fullest worker of each instance uses: "
                    "at 100% that worker's requests wait for a connection.",
                    "percentunit",
                    Query(_fullest("instance"), "{{instance}}"),
                    lines=[(1.0, "red")],
                ),
            ],
            [
                graph(
                    "Connection wait time",
                    "How long requests waited for a connection, timed-out waits included: "
                    "p50 and p99.",
                    "s",
                    Query(_wait_quantile(0.5), "p50"),
                    Query(_wait_quantile(0.99), "p99"),
                ),
                graph(
                    "Checkouts and timeouts",
                    "Waits for a connection per second (each ends with one or times out), "
                    "and those that timed out.",
                    "ops",
                    Query(f"sum(rate({WAIT}_count{sel()}[{RATE}]))", "checkouts"),
                    Query(timeouts, "timeouts"),
                ),
            ],
            [
                graph(
                    "Requests waiting for a connection",
                    "Requests waiting for a pooled connection, by instance.",
                    "short",
                    Query(
                        f"sum by (instance) (db_client_connection_pending_requests{sel()})",
                        "{{instance}}",
                    ),
                ),
                graph(
                    "503 database_unavailable by route",
                    "Requests per second answered 503 database_unavailable, by route.",
                    "reqps",
                    Query(
                        named_routes(f"sum by (http_route) ({unavailable})"),
                        "{{http_route}}",
                    ),
                ),
            ],
        ],
    )
