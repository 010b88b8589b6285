"""The runbooks: one section of a project's ``docs/runbooks.md`` per alert of rules.py.

Rendered with the rules, for the project's job, from the same Service: each
alert's ``runbook_url`` annotation is ``<runbooks_url>#<anchor>``, and the
section's heading is the alert's name alone, which GitHub, GitLab and MkDocs
all turn into that anchor. A section says when the alert fires (the rule's own
expression), which panels to open and which queries to run, the likely causes
among the failures the resilience tests reproduce, and what to do.

Plain Python: the post-generation hook imports it without the Grafana SDK.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .rules import DATABASE, OVERVIEW, RUNTIME, SERVICE_LEVELS, Service, alerts_file
from .slo import BUCKETS, BURN_ALERTS, REQUESTS, SLO_WINDOW, le, number

# The boards' titles, as monitoring/boards/ gives them (the kit's tests compare).
BOARDS = {
    OVERVIEW: "Service overview",
    DATABASE: "Database pool",
    RUNTIME: "Runtime",
    SERVICE_LEVELS: "Service level objectives",
}

URL_RE = re.compile(r"^https?://[^\s#{}<>\"'`\\^|]+$")


def default_runbooks_url(context: Mapping[str, Any]) -> str:
    """Where ``docs/runbooks.md`` is read when the answers do not say: the file on
    the default branch of the repository on the CI provider's host, as the
    templates' ``cookiecutter.json`` default has it."""
    slug = context["project_slug"]
    if context.get("ci_provider") == "gitlab":
        return f"https://gitlab.com/your-group/{slug}/-/blob/main/docs/runbooks.md"
    return f"https://github.com/your-org/{slug}/blob/main/docs/runbooks.md"


def runbooks_url(context: Mapping[str, Any]) -> str:
    """The context's ``runbooks_url``, or the default for its slug and CI provider."""
    found = problems(context)
    if found:
        raise ValueError(" ".join(found))
    return str(context.get("runbooks_url", default_runbooks_url(context)))


def problems(context: Mapping[str, Any]) -> list[str]:
    """What is wrong with the context's ``runbooks_url`` (empty when nothing)."""
    if "runbooks_url" not in context:
        return []
    url = context["runbooks_url"]
    if isinstance(url, str) and URL_RE.match(url) and len(url) <= 500:
        return []
    return [
        f"runbooks_url {url!r} must be the http:// or https:// address where the project's "
        "docs/runbooks.md is read, without a #fragment (each alert's anchor is appended), "
        "spaces, quotes or braces, at most 500 characters."
    ]


def anchor(runbook_url: str) -> str:
    """The anchor of a runbook link (its section's heading, in lower case)."""
    return runbook_url.rpartition("#")[2]


# --- what each section says -------------------------------------------------------------


@dataclass(frozen=True)
class Look:
    """Panels of one board to open, by their titles."""

    board: str  # the board's uid
    panels: tuple[str, ...]


@dataclass(frozen=True)
class Query:
    what: str
    expr: str


@dataclass(frozen=True)
class Runbook:
    means: str
    looks: tuple[Look, ...]
    queries: tuple[Query, ...]
    causes: tuple[str, ...]
    actions: tuple[str, ...]


def _kubectl(service: Service, command: str) -> str:
    return f"`kubectl {command.format(job=service.job)}`"


def _by_cause(service: Service) -> Query:
    errors = REQUESTS + service.sel('http_response_status_code=~"5.."')
    return Query(
        "5xx per second by cause (`error_type`: internal_error, overloaded, "
        "database_unavailable) and route",
        f"sum by (error_type, http_route) (rate({errors}[5m]))",
    )


def _versions(service: Service) -> Query:
    return Query(
        "The versions running, by instance (a new one when the trouble began is a deploy)",
        f"max by (instance, version) (service_build_info{service.sel()})",
    )


def _pool(service: Service) -> Query:
    used = "db_client_connections" + service.sel('db_client_connection_state="used"')
    return Query(
        "The fullest worker's pool of each instance, as a share of what it allows",
        f"max by (instance) ({used}\n  / ignoring (db_client_connection_state) "
        f"db_client_connection_max{service.sel()})",
    )


_DEPLOY = (
    "A bad deploy: the trouble starts at a deploy mark (every board draws one) or a "
    "new line of *Versions running*. Roll back first, investigate after: "
)
_DATABASE_DOWN = (
    "The database is down, restarting or unreachable: each request that needs it is a "
    "503 `database_unavailable` at once (refused or reset connections) or within "
    "`DB_CONNECT_TIMEOUT` (a silent host), `/ready` turns 503 and the service heals by "
    "itself once the database is back (the resilience tests measure all three)."
)
_POOL_FULL = (
    "An exhausted pool: every connection of a worker's pool in use, so requests wait "
    "`DB_POOL_TIMEOUT` and get 503 `database_unavailable`."
)
_SLOW_STATEMENTS = (
    "Slow statements: a lock, a missing index or a heavy query holds connections until "
    "PostgreSQL cancels it at `DB_STATEMENT_TIMEOUT` (a 503); meanwhile the pool fills."
)
_SHEDDING = (
    "Load shedding: a worker at `MAX_IN_FLIGHT` answers the excess 503 `overloaded` at "
    "once, with `Retry-After`."
)
_BUG = (
    "A bug: an unhandled exception is a 500 `internal_error`, logged once with its stack "
    "trace (and reported to Sentry when `SENTRY_DSN` is set); other requests are unaffected."
)


def _slo_runbook(service: Service, slo: str, fast: bool) -> Runbook:
    objective = next(o for o in service.slos if o.slo == slo)
    title = objective.title
    alert = next(a for a in BURN_ALERTS if (a.speed == "Fast") == fast)
    long, _, _ = alert.conditions[0]
    fires = " or ".join(
        f"above {number(rate)} over {lw} and {sw}" for lw, sw, rate in alert.conditions
    )
    burn = Query(
        f"The burn rate over {long} (1 spends exactly the budget over {SLO_WINDOW}; the "
        f"alert fires when it is {fires})",
        f"slo:sli_error:ratio_rate{long}{service.sel(objective.matcher)} "
        f"/ {number(objective.budget)}",
    )
    looks: tuple[Look, ...]
    queries: tuple[Query, ...]
    causes: tuple[str, ...]
    actions: tuple[str, ...]
    if slo == "availability":
        looks = (
            Look(SERVICE_LEVELS, ("Availability burn rate", "Error ratio (5xx) vs budget")),
            Look(OVERVIEW, ("5xx by cause", "Error ratio (5xx) by route", "Error logs")),
            Look(RUNTIME, ("Versions running", "Restarts")),
        )
        queries = (burn, _by_cause(service), _versions(service))
        causes = (
            _DEPLOY + "a new release failing requests shows as 500 `internal_error`.",
            _DATABASE_DOWN,
            _POOL_FULL + " A slow statement cut at `DB_STATEMENT_TIMEOUT` is a 503 too.",
            _SHEDDING,
            _BUG,
        )
        actions = (
            "Read *5xx by cause*: `internal_error` is the code (a deploy, a bug), "
            "`database_unavailable` the database or the pool, `overloaded` capacity.",
            "If it began with a deploy, roll back: "
            + _kubectl(service, "rollout undo deployment/{job}")
            + ", then find the failing route in *Error ratio (5xx) by route* and its "
            "exception in *Error logs* (a 500 writes one error line with its traceback, "
            "request id and trace id, which opens the request's trace).",
            "For `database_unavailable`, follow ServiceNotReady (the database) or "
            "DatabasePoolExhausted (the pool) below.",
            "For `overloaded`, follow ServiceSheddingLoad below.",
        )
    else:
        looks = (
            Look(SERVICE_LEVELS, ("Latency burn rate", "Slow request ratio vs budget")),
            Look(
                OVERVIEW,
                ("Latency by route", "Latency distribution", "Slowest routes (p99)"),
            ),
            Look(DATABASE, ("Connection wait time", "Fullest pool")),
        )
        threshold = objective.latency_seconds or 0.0
        good = BUCKETS + service.sel(f'le="{le(threshold)}"', 'http_response_status_code!~"5.."')
        queries = (
            burn,
            Query(
                f"The share of each route's requests answered within {number(threshold)} s "
                "without a 5xx (what the objective counts)",
                f"sum by (http_route) (rate({good}[5m]))\n/\n"
                f"sum by (http_route) (rate({REQUESTS}{service.sel()}[5m]))",
            ),
            _versions(service),
        )
        causes = (
            _SLOW_STATEMENTS,
            "Waiting for a pooled connection: *Connection wait time* rises before the "
            "pool times out.",
            "Slow outbound calls made within the request (*Outbound latency p95 by "
            "server*): a call waits up to `HTTP_CLIENT_TIMEOUT` per attempt.",
            "CPU saturation: too few instances or workers for the traffic (*CPU* on the "
            "Runtime board, *Saturation*).",
            _DEPLOY + "a slower release shows in *Latency by route* from the mark on.",
            "Every 5xx counts as slow (shed or refused requests too): a latency burn "
            "together with an availability burn is one cause, follow the availability one.",
        )
        actions = (
            "Find the slow routes in *Latency by route* and *Slowest routes (p99)*; "
            "open an exemplar of *Latency distribution* or *Latency percentiles* for "
            "the trace of a slow request, whose database and client spans show where the "
            "time goes.",
            "If it began with a deploy, roll back: "
            + _kubectl(service, "rollout undo deployment/{job}")
            + ".",
            "For slow statements, look at `pg_stat_activity` (waiting locks, long "
            "queries) and the query plans; for pool waits, follow DatabasePoolExhausted.",
            "For CPU, add instances (the autoscaler's `maxReplicas`) or workers.",
        )
    budget = objective.summary
    speed = (
        "fast: 2% of the 30 days' budget within an hour (or 5% within 6 hours); at 14.4 "
        "times the sustainable pace the whole budget is gone in about 2 days"
        if fast
        else "steadily: at 3 times the sustainable pace over a day, or above it over 3 "
        "days; no emergency, but the budget will not last the month"
    )
    return Runbook(
        f"{title} objective: {budget}, over {SLO_WINDOW}. Requests are missing it {speed}.",
        looks,
        queries,
        causes,
        actions,
    )


def _budget_exhausted(service: Service) -> Runbook:
    return Runbook(
        f"More requests missed an objective over the last {SLO_WINDOW} than it allows "
        "(the `slo` label says which): users have had less than was promised.",
        (
            Look(
                SERVICE_LEVELS,
                (
                    "Error budget burn-down (30d)",
                    "Availability error budget left",
                    "Latency error budget left",
                ),
            ),
            Look(RUNTIME, ("Versions running",)),
        ),
        (
            Query(
                "The budget left of each objective (below 0: overspent)",
                f"slo:error_budget_remaining:ratio{service.sel()}",
            ),
            _versions(service),
        ),
        (
            "Whatever burned the budget, often already over: a steep step in the burn-down "
            "is an incident (a fast burn paged then), a steady slope a chronic cause "
            "(slow burns, tickets).",
        ),
        (
            "Stop risky changes (feature launches, migrations) until the budget recovers; "
            "spend the time on the causes the burn-down points at.",
            "Check the objective is right: if users were content, it may be too strict "
            "(the `slo_*` answers, then `cruft update`).",
        ),
    )


def _service_down(service: Service) -> Runbook:
    return Runbook(
        "No target of the service answers Prometheus' scrapes: the service is down, or "
        "every instance is unreachable. Its SLO ratios have no data, so this alert pages "
        "in their place.",
        (Look(RUNTIME, ("Targets up", "Restarts", "Versions running")),),
        (
            Query("Every target and whether it answers", f"up{service.sel()}"),
            _versions(service),
        ),
        (
            _DEPLOY + "a release that cannot start (a setting it cannot parse stops it "
            "with one log line naming the variable) never becomes ready.",
            "Crash-looping processes: killed for memory, an exception at start; see "
            "ServiceCrashLooping.",
            "The network between Prometheus and the pods (a NetworkPolicy, the port "
            "renamed in the Deployment but not the PodMonitor).",
        ),
        (
            _kubectl(service, "get pods -l app.kubernetes.io/name={job}")
            + ", then "
            + _kubectl(service, "describe pod <pod>")
            + " (events: OOMKilled, image pull, failed probes) and "
            + _kubectl(service, "logs <pod> --previous")
            + "; *Error logs*, where the logs reach Loki, keeps the last lines of processes "
            "that are gone.",
            "If a deploy started it, roll back: "
            + _kubectl(service, "rollout undo deployment/{job}")
            + ".",
            "If the pods run and answer `/healthz` but not `/metrics` from Prometheus, "
            "check the network path (the PodMonitor's port `http`, NetworkPolicies).",
        ),
    )


def _targets_absent(service: Service) -> Runbook:
    return Runbook(
        "Prometheus has no target of the job at all: nothing about the service can alert "
        "while this lasts.",
        (Look(RUNTIME, ("Targets up",)),),
        (Query("The service's targets (none while this fires)", f"up{service.sel()}"),),
        (
            "The Deployment is scaled to zero, or deleted.",
            "The PodMonitor selects nothing: its `selector` no longer matches the pods' "
            "labels, it is in a namespace Prometheus does not watch, or it lacks the label "
            "your Prometheus selects monitors by (`podMonitorSelector`).",
            "The job was renamed: the PodMonitor's `jobLabel` names the pods' "
            "`app.kubernetes.io/name`, which must stay the project slug the rules match.",
        ),
        (
            _kubectl(service, "get deployment,pods,podmonitor -l app.kubernetes.io/name={job}")
            + ": are there pods, and a PodMonitor?",
            "In Prometheus' Status → Targets and Service discovery pages, find the "
            "PodMonitor, the pods it selects and the job they get (under another name, "
            "the rules see nothing).",
        ),
    )


def _traffic_stopped(service: Service) -> Runbook:
    requests = f"{REQUESTS}{service.sel()}"
    return Runbook(
        "The service answered no request for 10 minutes after a steady hour: clients "
        "cannot reach it, though it may look healthy.",
        (
            Look(OVERVIEW, ("Request rate", "Request rate by route")),
            Look(RUNTIME, ("Targets up",)),
        ),
        (
            Query(
                "Requests per second, by instance",
                f"sum by (instance) (rate({requests}[5m]))",
            ),
            Query(
                "Instances whose readiness check fails (they get no traffic)",
                f"service_ready{service.sel()} == 0",
            ),
        ),
        (
            "Every instance not ready, so the Service has no endpoint: the database is "
            "down (`/ready` fails with it), see ServiceNotReady.",
            "Routing: an Ingress, DNS record, load balancer or certificate changed or "
            "expired; the Service's selector no longer matches the pods.",
            "The clients stopped: a caller's deploy, a scheduler that no longer runs.",
        ),
        (
            _kubectl(service, "get endpoints {job}")
            + ": no address means no ready pod (ServiceNotReady).",
            "Call the public address yourself (`curl -i https://<host>/healthz`) and "
            "follow where it stops: DNS, TLS, the ingress' logs.",
            "Ask the main callers whether they changed anything.",
        ),
    )


def _scrape_target_down(service: Service) -> Runbook:
    return Runbook(
        "One target of several has not answered a scrape for 5 minutes; the others do, "
        "so users may notice nothing.",
        (Look(RUNTIME, ("Targets up", "Restarts", "Youngest process age")),),
        (Query("The targets that do not answer", f"up{service.sel()} == 0"),),
        (
            "The pod is restarting or stuck starting (see ServiceCrashLooping).",
            "Its node is unhealthy or partitioned from Prometheus.",
            "Its worker is blocked: a process that serves nothing cannot answer `/metrics` "
            "either (gunicorn replaces a worker silent for 30 s).",
        ),
        (
            _kubectl(service, "get pods -o wide -l app.kubernetes.io/name={job}")
            + ": find the instance's pod and node.",
            _kubectl(service, "describe pod <pod>")
            + " and "
            + _kubectl(service, "logs <pod>")
            + "; delete the pod if it stays stuck (the Deployment replaces it).",
        ),
    )


def _not_ready(service: Service) -> Runbook:
    return Runbook(
        "An instance's readiness check (the one `/ready` answers: the database answers "
        "within `READY_TIMEOUT`, and the instance is not draining) has failed for 5 "
        "minutes, so it gets no traffic.",
        (
            Look(OVERVIEW, ("503 database", "5xx by cause")),
            Look(DATABASE, ("503 database_unavailable", "Connections: used, idle and max")),
        ),
        (
            Query("The instances not ready", f"service_ready{service.sel()} == 0"),
            Query(
                "503 database_unavailable per second, by instance",
                "sum by (instance) (rate("
                + REQUESTS
                + service.sel('error_type="database_unavailable"')
                + "[5m]))",
            ),
        ),
        (
            _DATABASE_DOWN,
            "The instance cannot reach the database alone: its node's network, DNS, or "
            "credentials it read at start (`DATABASE_URL`).",
            "It is draining and did not stop: SIGTERM arrived, but something outlives "
            "`GRACEFUL_TIMEOUT` and the kubelet's grace period.",
        ),
        (
            "Every instance not ready: check the database first (its own monitoring, "
            "`pg_isready`, its logs); the service recovers by itself once it answers.",
            "One instance: compare its logs ("
            + _kubectl(service, "logs <pod>")
            + ") with a ready one's; delete the pod if the database is fine.",
        ),
    )


def _shedding(service: Service) -> Runbook:
    shed = REQUESTS + service.sel('error_type="overloaded"')
    return Runbook(
        "More than 1% of requests were refused with 503 `overloaded` for 10 minutes: "
        "workers are at their in-flight limit (`MAX_IN_FLIGHT`).",
        (
            Look(
                OVERVIEW,
                ("Saturation", "In flight and the shedding limit", "503 load shedding"),
            ),
            Look(RUNTIME, ("CPU",)),
            Look(DATABASE, ("Connection wait time",)),
        ),
        (
            Query(
                "In-flight requests against the limit, by instance",
                f"sum by (instance) (http_server_active_requests{service.sel()})\n/\n"
                f"sum by (instance) (http_server_active_requests_limit{service.sel()})",
            ),
            Query("Shed requests per second", f"sum by (instance) (rate({shed}[5m]))"),
        ),
        (
            _SHEDDING + " The traffic grew beyond what the instances serve.",
            "Requests got slower and pile up: slow statements, pool waits, slow outbound "
            "calls hold each request longer, so the same traffic needs more in flight.",
            "Too few instances: the autoscaler is at `maxReplicas`, or scales on CPU while "
            "requests wait on the database.",
        ),
        (
            "If latency rose first (*Latency percentiles*), treat the slowness "
            "(DatabasePoolExhausted, the latency burn's runbook); adding instances would "
            "only add load on the database.",
            "Otherwise add capacity: "
            + _kubectl(service, "scale deployment/{job} --replicas=<n>")
            + " (the autoscaler follows CPU), or raise `maxReplicas`.",
        ),
    )


def _crash_looping(service: Service) -> Runbook:
    return Runbook(
        "Three or more processes of one instance were replaced within 15 minutes: a "
        "worker or the whole service dies and is started again.",
        (
            Look(
                RUNTIME,
                (
                    "Restarts",
                    "Youngest process age",
                    "Resident memory by process",
                    "Versions running",
                ),
            ),
            Look(OVERVIEW, ("Error logs",)),
        ),
        (
            Query(
                "Process start times (each change is a new process)",
                f"process_start_time_seconds{service.sel()}",
            ),
            Query(
                "Resident memory of each process",
                f"max by (instance, pid) (process_resident_memory_bytes{service.sel()})",
            ),
        ),
        (
            "Killed for memory: the container's limit (OOMKilled in the pod's events) or "
            "the kernel; *Resident memory by process* climbs to the limit first.",
            "A worker killed by gunicorn: silent towards its master for 30 s (a blocking "
            "call in an event loop, a hung thread); its log says `WORKER TIMEOUT`. The "
            "resilience tests show a killed worker replaced at once, its peers serving on.",
            _DEPLOY + "a release that fails at start restarts over and over.",
        ),
        (
            _kubectl(service, "describe pod <pod>")
            + " (last state, exit code, OOMKilled) and "
            + _kubectl(service, "logs <pod> --previous")
            + "; *Error logs*, where the logs reach Loki, keeps the last lines of processes "
            "that are gone.",
            "Memory: raise the container's limit or find the leak; a deploy: roll back "
            "with " + _kubectl(service, "rollout undo deployment/{job}") + ".",
        ),
    )


def _file_descriptors(service: Service) -> Runbook:
    return Runbook(
        "A process has more than 80% of its file descriptors open for 10 minutes; at the "
        "limit it accepts no connection and opens no file.",
        (Look(RUNTIME, ("File descriptors used",)),),
        (
            Query(
                "Each process' share of its limit",
                f"process_open_fds{service.sel()} / process_max_fds{service.sel()}",
            ),
        ),
        (
            "Many idle keep-alive or slow clients: each holds a socket (`KEEPALIVE`, "
            "`REQUEST_TIMEOUT` bound them).",
            "A leak: connections or files opened and never closed, growing since the "
            "process started (a steady slope in *File descriptors used*).",
        ),
        (
            "Relief: delete the pod (the Deployment replaces it, a fresh process starts "
            "at a few descriptors).",
            "A slope that restarts with every process is a leak: find it in the code "
            "that deploy changed. A flat high plateau needs a higher limit (`ulimit -n` "
            "of the container runtime).",
        ),
    )


def _pool_exhausted(service: Service) -> Runbook:
    return Runbook(
        "A worker's pool has had every connection in use and requests waiting for one "
        "for 5 minutes: those requests wait up to `DB_POOL_TIMEOUT`, then get 503.",
        (
            Look(
                DATABASE,
                (
                    "Fullest pool by instance",
                    "Requests waiting for a connection",
                    "Connection wait time",
                    "Checkouts and timeouts",
                ),
            ),
            Look(OVERVIEW, ("Latency by route",)),
        ),
        (
            _pool(service),
            Query(
                "Requests waiting for a connection, by instance",
                "sum by (instance) (db_client_connection_pending_requests" + service.sel() + ")",
            ),
        ),
        (
            _SLOW_STATEMENTS,
            "More concurrent work than connections: traffic grew, or background work "
            "(deliveries) holds connections; FastAPI's in-flight limit is ten times its "
            "pool on purpose, so there the pool, not the limit, bounds the database.",
            "The pool is too small for the instance: `DB_POOL_SIZE + DB_MAX_OVERFLOW` per worker.",
        ),
        (
            "Look at what holds the connections: `pg_stat_activity` for long queries and "
            "transactions, and the traces of slow requests (an exemplar of *Latency "
            "distribution*).",
            "If the database has room (`max_connections` covers replicas x workers x "
            "pool), raise `DB_POOL_SIZE` or `DB_MAX_OVERFLOW`; otherwise shorten what "
            "holds connections, or add replicas only if the database can take them.",
        ),
    )


def _pool_timeouts(service: Service) -> Runbook:
    timeouts = f"db_client_connection_timeouts_total{service.sel()}"
    waits = f"db_client_connection_wait_time_seconds_count{service.sel()}"
    return Runbook(
        "More than 1% of connection checkouts (and at least 5) waited `DB_POOL_TIMEOUT` "
        "in vain over 10 minutes: each is a 503 `database_unavailable`.",
        (
            Look(
                DATABASE,
                ("Checkouts and timeouts", "Pool timeouts", "503 database_unavailable by route"),
            ),
        ),
        (
            Query(
                "The share of checkouts that timed out, by instance",
                f"sum by (instance) (rate({timeouts}[10m]))\n/\n"
                f"sum by (instance) (rate({waits}[10m]))",
            ),
            _pool(service),
        ),
        (
            _POOL_FULL,
            _SLOW_STATEMENTS,
            "Bursts shorter than DatabasePoolExhausted's 5 minutes: the pool fills, "
            "times a few requests out, and drains again.",
        ),
        (
            "Follow DatabasePoolExhausted: the causes and the remedies are the same.",
            "Routes in *503 database_unavailable by route* show which requests suffer; "
            "their traces show what they waited for.",
        ),
    )


RUNBOOKS: dict[str, Callable[[Service], Runbook]] = {
    "SLOAvailabilityFastBurn": lambda s: _slo_runbook(s, "availability", fast=True),
    "SLOAvailabilitySlowBurn": lambda s: _slo_runbook(s, "availability", fast=False),
    "SLOLatencyFastBurn": lambda s: _slo_runbook(s, "latency", fast=True),
    "SLOLatencySlowBurn": lambda s: _slo_runbook(s, "latency", fast=False),
    "SLOErrorBudgetExhausted": _budget_exhausted,
    "ServiceDown": _service_down,
    "ServiceTargetsAbsent": _targets_absent,
    "ServiceTrafficStopped": _traffic_stopped,
    "ScrapeTargetDown": _scrape_target_down,
    "ServiceNotReady": _not_ready,
    "ServiceSheddingLoad": _shedding,
    "ServiceCrashLooping": _crash_looping,
    "ServiceFileDescriptorsNearLimit": _file_descriptors,
    "DatabasePoolExhausted": _pool_exhausted,
    "DatabasePoolTimeouts": _pool_timeouts,
}


# --- the file -----------------------------------------------------------------------------


def _looks(service: Service, looks: tuple[Look, ...]) -> list[str]:
    return [
        f"- [{BOARDS[look.board]}]({service.link(look.board)}): "
        + ", ".join(f"*{panel}*" for panel in look.panels)
        for look in looks
    ]


def _promql(expr: str) -> list[str]:
    return ["```promql", *expr.splitlines(), "```"]


def _linked(text: str, sections: Mapping[str, str]) -> str:
    """Prose with every alert it names linked to that alert's section."""
    names = "|".join(sorted(sections, key=len, reverse=True))
    return re.sub(rf"\b({names})\b", lambda m: f"[{m[1]}](#{sections[m[1]]})", text)


def _section(service: Service, rule: dict[str, Any], sections: Mapping[str, str]) -> list[str]:
    alert = rule["alert"]
    book = RUNBOOKS[alert](service)
    severity = rule["labels"]["severity"]
    kind = "pages" if severity == "critical" else "opens a ticket"
    pending = f", once true for {rule['for']}" if "for" in rule else ""
    lines = [
        f"## {alert}",
        "",
        f"`severity: {severity}`: it {kind}{pending}. {book.means}",
        "",
        "**Look at**",
        "",
        *_looks(service, book.looks),
        "",
        "**Queries**",
        "",
    ]
    for query in book.queries:
        lines += [f"{query.what}:", "", *_promql(query.expr), ""]
    lines += ["**Likely causes**", ""]
    lines += [f"- {_linked(cause, sections)}" for cause in book.causes]
    lines += ["", "**What to do**", ""]
    lines += [f"{n}. {_linked(action, sections)}" for n, action in enumerate(book.actions, 1)]
    lines += ["", "**The rule**", "", *_promql(rule["expr"]), ""]
    return lines


def _plain(service: Service, template: str) -> str:
    """An annotation's template as the index shows it: the job named, other labels quoted."""
    text = template.replace("{{ $labels.job }}", service.job)
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", r"`\1`", text)


def runbooks_file(service: Service, header: str) -> str:
    """``docs/runbooks.md`` of the project ``service`` describes; ``header`` says
    where it comes from."""
    rules = [rule for group in alerts_file(service)["groups"] for rule in group["rules"]]
    sections = {rule["alert"]: anchor(rule["annotations"]["runbook_url"]) for rule in rules}
    lines = [
        f"<!-- {header} -->",
        "",
        f"# Runbooks: {service.job}",
        "",
        "One section per alert of `grafana/rules/alerts.yml`, in its order; each alert's "
        "`runbook_url` annotation links its section here. Every link opens a board of "
        f"Grafana ({service.grafana_url}) on job `{service.job}`; every query runs as it "
        "is in Grafana's Explore or Prometheus' own page. `critical` alerts page, "
        "`warning` ones open a ticket.",
        "",
        "| Alert | Severity | Summary |",
        "| --- | --- | --- |",
    ]
    for rule in rules:
        summary = _plain(service, rule["annotations"]["summary"])
        lines.append(
            f"| {_linked(rule['alert'], sections)} | {rule['labels']['severity']} | {summary} |"
        )
    lines.append("")
    for rule in rules:
        lines += _section(service, rule, sections)
    return "\n".join(lines).rstrip("\n") + "\n"
