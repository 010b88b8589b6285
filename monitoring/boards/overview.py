"""Service overview: the RED view of one service (rate, errors, duration), its
saturation against the load-shedding limit, its Apdex, its error logs, and its
calls to other services. The rate, error and duration panels link to the
service's logs over the same time range."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from ..panels import (
    ERROR_LEVELS,
    RANGE,
    RATE,
    REQUESTS,
    Link,
    Query,
    Spec,
    dashboard,
    graph,
    heat,
    log_lines,
    log_query,
    named_routes,
    ranking,
    sel,
    single,
)
from ..rules import OVERVIEW

COUNT = f"{REQUESTS}_count"
BUCKET = f"{REQUESTS}_bucket"
QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
FIVE_XX = 'http_response_status_code=~"5.."'
ANSWERED = 'http_response_status_code!~"5.."'
OVERLOADED = 'error_type="overloaded"'
CLIENT = "http_client_request_duration_seconds"
FAILED_ATTEMPT = 'error_type!=""'
DATABASE = 'error_type="database_unavailable"'
# Apdex: satisfied within T, tolerating within 4T; both must be bucket bounds
# (the form Prometheus 3 stores them in), and a 5xx is neither.
APDEX_T, APDEX_4T = "0.25", "1.0"
LIMIT = "http_server_active_requests_limit"
ACTIVE = "http_server_active_requests"

# What a click on a rate, error or duration value opens (docs/contract.md,
# section 11): the service's lines, or those of its failures: the access lines
# of 5xx answers (docs/contract.md, section 5) and the lines at error level.
ERROR_LOGS = log_query(ERROR_LEVELS)
ALL_LOGS = [Link("Logs of this service", log_query())]
FAILURE_LOGS = [
    Link(
        "Logs of failed requests",
        log_query(pipeline=f"| json | http_status >= 500 or {ERROR_LEVELS}"),
    ),
    Link("Error logs of this service", ERROR_LOGS),
]


def _rate(*matchers: str, by: str = "", window: str = RATE) -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({COUNT}{sel(*matchers)}[{window}]))"


def _quantile(q: float, by: str = "le", window: str = RATE) -> str:
    return f"histogram_quantile({q}, sum by ({by}) (rate({BUCKET}{sel()}[{window}])))"


def _error_ratio(by: str) -> str:
    errors = _rate(FIVE_XX, by=by)
    # Without any 5xx the ratio is 0, not "no data".
    return f"({errors} or {_rate(by=by)} * 0) / {_rate(by=by)}"


def _apdex() -> str:
    def within(bound: str) -> str:
        selector = sel(f'le="{bound}"', ANSWERED)
        return f"sum(rate({BUCKET}{selector}[{RATE}]))"

    return f"({within(APDEX_T)} + {within(APDEX_4T)}) / 2 / {_rate()}"


def _outbound() -> list[Spec]:
    """The service's calls to other services (docs/contract.md, section 12), by host."""
    by_server = "{{server_address}}"
    return [
        graph(
            "Outbound calls by server",
            "Attempts per second of the service's HTTP calls to other services, by host "
            "called (a retried delivery counts each attempt).",
            "reqps",
            Query(
                f"sum by (server_address) (rate({CLIENT}_count{sel()}[{RATE}]))",
                by_server,
            ),
            width=6,
        ),
        graph(
            "Outbound errors by server",
            "Failed attempts per second by host and error: the status for an answer of "
            "400 or more, else the client's exception (ConnectError, ReadTimeout...).",
            "reqps",
            Query(
                f"sum by (server_address, error_type) "
                f"(rate({CLIENT}_count{sel(FAILED_ATTEMPT)}[{RATE}]))",
                "{{server_address}} {{error_type}}",
            ),
            width=6,
            stacked=True,
        ),
        graph(
            "Outbound latency p95 by server",
            "95th percentile of the duration of each attempt, by host called.",
            "s",
            Query(
                f"histogram_quantile(0.95, sum by (le, server_address) "
                f"(rate({CLIENT}_bucket{sel()}[{RATE}])))",
                by_server,
            ),
            width=6,
        ),
        graph(
            "Deliveries by outcome",
            "Messages sent in the background and retried (a webhook), per second, by how "
            "they ended: delivered, failed (attempts exhausted or refused with a 4xx) or "
            "abandoned (the service stopped first).",
            "reqps",
            Query(
                f"sum by (delivery, outcome) (rate(outbound_deliveries_total{sel()}[{RATE}]))",
                "{{delivery}} {{outcome}}",
            ),
            width=6,
            stacked=True,
        ),
    ]


def build() -> Dashboard:
    stats = [
        single(
            "Request rate",
            "Requests per second answered by the selected instances (probes and scrapes "
            "are not counted).",
            "reqps",
            Query(_rate(), "requests"),
            width=3,
            links=ALL_LOGS,
        ),
        single(
            "Error ratio (5xx)",
            "Share of requests answered with a 5xx status, whatever the cause.",
            "percentunit",
            Query(f"({_rate(FIVE_XX)} or vector(0)) / {_rate()}", "5xx"),
            width=3,
            steps=[(None, "green"), (0.001, "orange"), (0.01, "red")],
            links=FAILURE_LOGS,
        ),
        single(
            "Latency p99",
            "99th percentile of the request duration, from the duration histogram.",
            "s",
            Query(_quantile(0.99), "p99"),
            width=3,
            steps=[(None, "green"), (0.5, "orange"), (1, "red")],
            links=ALL_LOGS,
        ),
        single(
            "Apdex",
            f"Application performance index with T = {APDEX_T} s: requests answered within "
            f"T count as satisfied, within 4T ({APDEX_4T} s) as half, the slower ones and "
            "every 5xx as none. 1 is every user satisfied.",
            "none",
            Query(_apdex(), "apdex"),
            width=3,
            steps=[(None, "red"), (0.7, "orange"), (0.94, "green")],
            decimals=2,
        ),
        single(
            "Active requests",
            "Requests in flight right now, summed over the instances.",
            "short",
            Query(f"sum({ACTIVE}{sel()})", "in flight"),
            width=3,
        ),
        single(
            "Saturation",
            "Requests in flight as a share of the load-shedding limit (MAX_IN_FLIGHT per "
            "worker, summed like them): at 100% a worker refuses requests with 503 overloaded.",
            "percentunit",
            Query(f"sum({ACTIVE}{sel()}) / sum({LIMIT}{sel()})", "saturation"),
            width=3,
            steps=[(None, "green"), (0.7, "orange"), (0.9, "red")],
        ),
        single(
            "503 load shedding",
            "Requests refused with 503 overloaded because a worker already served "
            "MAX_IN_FLIGHT requests.",
            "reqps",
            Query(f"{_rate(OVERLOADED)} or vector(0)", "overloaded"),
            width=3,
            steps=[(None, "green"), (0.001, "red")],
        ),
        single(
            "503 database",
            "Requests answered 503 database_unavailable: the database was unreachable, "
            "the pool had no connection in time, or a statement timed out.",
            "reqps",
            Query(f"{_rate(DATABASE)} or vector(0)", "database"),
            width=3,
            steps=[(None, "green"), (0.001, "red")],
        ),
    ]
    route_legend = "{{http_request_method}} {{http_route}}"
    return dashboard(
        OVERVIEW,
        "Service overview",
        "Rate, errors, duration and saturation of one of the kit's HTTP services "
        "(docs/contract.md, section 7). Annotations mark deploys: a version of the "
        "service seen for the first time.",
        [
            stats,
            [
                graph(
                    "Request rate by route",
                    "Requests per second by method and route template; requests that "
                    "matched no route (or were refused before routing) are shown as (no route).",
                    "reqps",
                    Query(named_routes(_rate(by="http_request_method, http_route")), route_legend),
                    links=ALL_LOGS,
                ),
                graph(
                    "Error ratio (5xx) by route",
                    "Share of each route's requests answered with a 5xx status, and of all "
                    "requests together.",
                    "percentunit",
                    Query(named_routes(_error_ratio("http_route")), "{{http_route}}"),
                    Query(_error_ratio(""), "all routes"),
                    links=FAILURE_LOGS,
                ),
            ],
            [
                graph(
                    "Latency percentiles",
                    "p50, p90 and p99 of the request duration over all routes. Exemplars "
                    "(dots) link to the trace of a sampled request.",
                    "s",
                    *(Query(_quantile(q), name, exemplar=True) for name, q in QUANTILES),
                    links=ALL_LOGS,
                ),
                graph(
                    "Latency by route",
                    "p50, p90 and p99 of the request duration by route template, with "
                    "exemplars that link to traces.",
                    "s",
                    *(
                        Query(
                            named_routes(_quantile(q, "le, http_route")),
                            f"{name} {{{{http_route}}}}",
                            exemplar=True,
                        )
                        for name, q in QUANTILES
                    ),
                    links=ALL_LOGS,
                ),
            ],
            [
                heat(
                    "Latency distribution",
                    "Requests per second in each bucket of the duration histogram: where "
                    "the requests' durations lie, not only their percentiles.",
                    Query(
                        f"sum by (le) (rate({BUCKET}{sel()}[{RATE}]))",
                        "{{le}}",
                        heatmap=True,
                    ),
                ),
            ],
            [
                graph(
                    "Status codes",
                    "Requests per second by HTTP status code, stacked.",
                    "reqps",
                    Query(_rate(by="http_response_status_code"), "{{http_response_status_code}}"),
                    width=8,
                    stacked=True,
                ),
                graph(
                    "5xx by cause",
                    "Server errors by status and error type: internal_error (500, a bug), "
                    "overloaded (503, load shedding), database_unavailable (503, the "
                    "database).",
                    "reqps",
                    Query(
                        _rate(FIVE_XX, by="http_response_status_code, error_type"),
                        "{{http_response_status_code}} {{error_type}}",
                    ),
                    width=8,
                    stacked=True,
                    links=FAILURE_LOGS,
                ),
                graph(
                    "In flight and the shedding limit",
                    "Requests in flight by instance, and each instance's load-shedding limit "
                    "(MAX_IN_FLIGHT times its workers): requests above it are refused with "
                    "503 overloaded.",
                    "short",
                    Query(f"sum by (instance) ({ACTIVE}{sel()})", "{{instance}}"),
                    Query(f"sum by (instance) ({LIMIT}{sel()})", "limit {{instance}}"),
                    width=8,
                ),
            ],
            [
                log_lines(
                    "Error logs",
                    "The service's lines at level error or critical (an unhandled exception "
                    "with its traceback among them), newest first, from Loki. A line's "
                    "trace_id opens its trace; the instance choice does not apply to logs.",
                    ERROR_LOGS,
                ),
            ],
            [
                ranking(
                    "Top routes",
                    "The ten busiest routes over the dashboard's time range, in requests "
                    "per second.",
                    "reqps",
                    Query(
                        named_routes(
                            f"topk(10, {_rate(by='http_request_method, http_route', window=RANGE)})"
                        ),
                        route_legend,
                        instant=True,
                    ),
                ),
                ranking(
                    "Slowest routes (p99)",
                    "The ten routes with the highest p99 duration over the dashboard's time range.",
                    "s",
                    Query(
                        named_routes(f"topk(10, {_quantile(0.99, 'le, http_route', RANGE)})"),
                        "{{http_route}}",
                        instant=True,
                    ),
                ),
            ],
            _outbound(),
        ],
        with_logs=True,
    )
