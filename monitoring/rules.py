"""Prometheus recording and alerting rules for one service (``grafana/rules/``).

Rendered for each project with its scrape job (the project slug) and its
objectives (slo.py): every selector matches that job only, the objectives are
recorded with it, so several services' rules live side by side in one
Prometheus and each is judged by its own objectives.

The SLO rules follow the Google SRE workbook: error ratios over several
windows, recorded once, and alerts that fire only when a long and a short
window both burn the error budget too fast. What pages (``critical``) is what
users feel now, or may: a fast burn, no target up, no target at all, traffic
gone. The rest opens a ticket (``warning``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .slo import (
    BURN_ALERTS,
    GRAFANA_URL,
    LONG_INTERVAL,
    LONG_WINDOWS,
    REQUESTS,
    SHORT_WINDOWS,
    SLO_WINDOW,
    BurnAlert,
    Objective,
    Objectives,
    least_requests,
    number,
    percent,
    seconds,
    service_objectives,
)

Rule = dict[str, Any]

# The kit's dashboards, by uid (monitoring/boards/).
OVERVIEW = "kit-service-overview"
DATABASE = "kit-database-pool"
RUNTIME = "kit-runtime"
SERVICE_LEVELS = "kit-service-levels"

POOL = "db_client_connection"
START = "process_start_time_seconds"


@dataclass(frozen=True)
class Service:
    """What the rules of one project are rendered from."""

    job: str  # the scrape job: the project slug (deploy/prometheus/prometheus.yml)
    objectives: Objectives
    grafana_url: str = GRAFANA_URL
    runbooks_url: str = ""  # where docs/runbooks.md is read (runbooks.py)
    slos: tuple[Objective, Objective] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slos", service_objectives(self.job, self.objectives))

    @property
    def selector(self) -> str:
        return f'job="{self.job}"'

    def sel(self, *matchers: str) -> str:
        return "{" + ", ".join((self.selector, *matchers)) + "}"

    def link(self, uid: str, instance: bool = False) -> str:
        url = f"{self.grafana_url.rstrip('/')}/d/{uid}?var-job={self.job}"
        return url + ("&var-instance={{ $labels.instance }}" if instance else "")

    def runbook(self, alert: str) -> str:
        """The alert's section of docs/runbooks.md: its heading's anchor, the name in lower case."""
        return f"{self.runbooks_url}#{alert.lower()}"


def _indent(expr: str, spaces: int = 2) -> str:
    return "\n".join(" " * spaces + line for line in expr.splitlines())


# --- recording rules ------------------------------------------------------------------


def _window_rules(service: Service, window: str) -> list[Rule]:
    job = {"job": service.job}
    rules: list[Rule] = [
        {
            "record": f"slo:sli_requests:rate{window}",
            "expr": f"sum by (job) (rate({REQUESTS}{service.sel()}[{window}]))",
            "labels": job,
        }
    ]
    for objective in service.slos:
        labels = {**job, "slo": objective.slo}
        rules.append(
            {
                "record": f"slo:sli_errors:rate{window}",
                "expr": objective.bad_rate(window),
                "labels": labels,
            }
        )
    for objective in service.slos:
        errors = f"slo:sli_errors:rate{window}{service.sel(objective.matcher)}"
        rules.append(
            {
                "record": f"slo:sli_error:ratio_rate{window}",
                # Without traffic there is no ratio (rather than NaN).
                "expr": f"{errors}\n/ on (job)\n(slo:sli_requests:rate{window}{service.sel()} > 0)",
                "labels": {**job, "slo": objective.slo},
            }
        )
    return rules


def recording_groups(service: Service) -> list[dict[str, Any]]:
    objectives: list[Rule] = [
        {
            "record": "slo:objective:ratio",
            "expr": f"vector({number(objective.target)})",
            "labels": {"job": service.job, "slo": objective.slo},
        }
        for objective in service.slos
    ]
    short = objectives + [rule for w in SHORT_WINDOWS for rule in _window_rules(service, w)]
    long = [rule for w in LONG_WINDOWS for rule in _window_rules(service, w)]
    for objective in service.slos:
        slo = objective.matcher
        # Request-weighted: the 5-minute rates, summed over the SLO window.
        long.append(
            {
                "record": f"slo:sli_error:ratio_rate{SLO_WINDOW}",
                "expr": (
                    f"sum_over_time(slo:sli_errors:rate5m{service.sel(slo)}[{SLO_WINDOW}])\n"
                    "/ on (job)\n"
                    f"(sum_over_time(slo:sli_requests:rate5m{service.sel()}[{SLO_WINDOW}]) > 0)"
                ),
                "labels": {"job": service.job, "slo": objective.slo},
            }
        )
    for objective in service.slos:
        slo = objective.matcher
        long.append(
            {
                "record": "slo:error_budget_remaining:ratio",
                "expr": (
                    f"1 - slo:sli_error:ratio_rate{SLO_WINDOW}{service.sel(slo)} "
                    f"/ {number(objective.budget)}"
                ),
                "labels": {"job": service.job, "slo": objective.slo},
            }
        )
    return [
        {"name": f"{service.job}-slo-short-windows", "rules": short},
        {"name": f"{service.job}-slo-long-windows", "interval": LONG_INTERVAL, "rules": long},
    ]


# --- alerts ---------------------------------------------------------------------------


def _alert(
    name: str,
    expr: str,
    severity: str,
    summary: str,
    description: str,
    link: str,
    pending: str | None = None,
) -> Rule:
    rule: Rule = {"alert": name, "expr": expr}
    if pending:
        rule["for"] = pending
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {
        "summary": summary,
        "description": f"{description} Dashboard: {link}",
        "dashboard": link,
    }
    return rule


def _burning(service: Service, objective: Objective, window: str, rate: float) -> str:
    """The burn rate over ``window``, where it is above ``rate``."""
    ratio = f"slo:sli_error:ratio_rate{window}{service.sel(objective.matcher)}"
    return f"{ratio} / {number(objective.budget)} > {number(rate)}"


def _burn_alert(service: Service, objective: Objective, alert: BurnAlert) -> Rule:
    branches, conditions = [], []
    for long, short, rate in alert.conditions:
        least = least_requests(rate, objective.budget)
        guard = f"slo:sli_requests:rate{long}{service.sel()} * {seconds(long)} >= {least}"
        branches.append(
            "(\n"
            + _indent(
                f"{_burning(service, objective, long, rate)}\n"
                f"and\n{_burning(service, objective, short, rate)}\n"
                f"and on (job)\n{guard}"
            )
            + "\n)"
        )
        conditions.append(
            f"above {number(rate)} over {long} and {short} (with {least} requests or more "
            f"over {long})"
        )
    return _alert(
        f"SLO{objective.title}{alert.speed}Burn",
        "\nor\n".join(branches),
        alert.severity,
        f"{{{{ $labels.job }}}} is burning its {objective.slo} error budget {alert.pace}",
        f"Objective: {objective.summary}, over {SLO_WINDOW} (an error budget of "
        f"{percent(objective.budget)} of requests). Burn rate now: "
        '{{ $value | printf "%.1f" }} over the long window (1 spends exactly the budget '
        f"over {SLO_WINDOW}). It fires when the burn rate is "
        + " or ".join(conditions)
        + ": one bad request alone never fires it.",
        service.link(SERVICE_LEVELS),
        alert.pending,
    )


def slo_alerts(service: Service) -> list[Rule]:
    rules = [
        _burn_alert(service, objective, alert)
        for objective in service.slos
        for alert in BURN_ALERTS
    ]
    rules.append(
        _alert(
            "SLOErrorBudgetExhausted",
            f"slo:error_budget_remaining:ratio{service.sel()} <= 0",
            "warning",
            "{{ $labels.job }} has spent its {{ $labels.slo }} error budget",
            f"Over the last {SLO_WINDOW} more requests missed the {{{{ $labels.slo }}}} "
            "objective than it allows: "
            "{{ $value | humanizePercentage }} of the budget is left, for 15 minutes now. "
            "Spend none on risky changes until it recovers.",
            service.link(SERVICE_LEVELS),
            "15m",
        )
    )
    return rules


def _restarts(service: Service, window: str) -> str:
    """Processes replaced within ``window``, by instance (the Restarts panel's count):
    one process changes its start time; with several workers a replaced worker is
    a ``pid`` series seen in the window that is gone now."""
    by = "by (job, instance)"
    series = f"{START}{service.sel()}"
    return (
        f"sum {by} (changes({series}[{window}]))\n"
        f"+ count {by} (count_over_time({series}[{window}]))\n"
        f"- count {by} ({series})"
    )


def service_alerts(service: Service) -> list[Rule]:
    sel = service.sel
    up = f"up{sel()}"
    requests = f"{REQUESTS}{sel()}"
    shed = REQUESTS + sel('error_type="overloaded"')
    used = f"{POOL}s" + sel(f'{POOL}_state="used"')
    return [
        _alert(
            "ServiceDown",
            f"count by (job) ({up} == 0)\nunless on (job)\ncount by (job) ({up} == 1)",
            "critical",
            "{{ $labels.job }} is down: no target answers",
            "None of the {{ $value }} targets of {{ $labels.job }} has answered a scrape for "
            "2 minutes: the service is down, and its SLO ratios have no data to alert on.",
            service.link(RUNTIME),
            "2m",
        ),
        _alert(
            "ServiceTargetsAbsent",
            f"absent({up})",
            "critical",
            "{{ $labels.job }} has no scrape target at all",
            "Prometheus has had no target of job {{ $labels.job }} for 5 minutes "
            "(absent(up) = {{ $value }}): the service is scaled to zero, or its discovery "
            "(PodMonitor selector, scrape configuration) finds nothing, so nothing about it "
            "can alert.",
            service.link(RUNTIME),
            "5m",
        ),
        _alert(
            "ServiceTrafficStopped",
            f"sum by (job) (increase({requests}[1h] offset 10m)) >= 60\n"
            f"and on (job)\nsum by (job) (increase({requests}[10m])) == 0",
            "critical",
            "{{ $labels.job }} has stopped receiving requests",
            "{{ $labels.job }} answered no request in the last 10 minutes (for 5 minutes now), "
            "after {{ $value | humanize }} in the hour before: clients cannot reach it "
            "(routing, DNS, ingress), which no error ratio shows.",
            service.link(OVERVIEW),
            "5m",
        ),
        _alert(
            "ScrapeTargetDown",
            f"{up} == 0",
            "warning",
            "Prometheus cannot scrape {{ $labels.instance }} ({{ $labels.job }})",
            "{{ $labels.instance }} has not answered /metrics for 5 minutes (up = {{ $value }}).",
            service.link(RUNTIME, instance=True),
            "5m",
        ),
        _alert(
            "ServiceNotReady",
            f"min by (job, instance) (service_ready{sel()}) == 0",
            "warning",
            "{{ $labels.instance }} of {{ $labels.job }} is not ready",
            "Its readiness check (the one /ready answers, which the service also runs "
            "itself) has failed for 5 minutes (service_ready = {{ $value }}): the database "
            "does not answer, or the instance is draining and did not stop.",
            service.link(OVERVIEW, instance=True),
            "5m",
        ),
        _alert(
            "ServiceSheddingLoad",
            f"sum by (job) (rate({shed}[10m]))\n/ on (job)\n"
            f"sum by (job) (rate({requests}[10m])) > 0.01",
            "warning",
            "{{ $labels.job }} is shedding load",
            "{{ $value | humanizePercentage }} of the requests of the last 10 minutes were "
            "refused with 503 overloaded (above 1% for 10 minutes now): its workers are at "
            "MAX_IN_FLIGHT. Add instances or workers, or find what holds requests.",
            service.link(OVERVIEW),
            "10m",
        ),
        _alert(
            "ServiceCrashLooping",
            f"{_restarts(service, '15m')}\n>= 3",
            "warning",
            "Processes of {{ $labels.instance }} ({{ $labels.job }}) keep restarting",
            "{{ $value }} processes of {{ $labels.instance }} were replaced in the last 15 "
            "minutes (3 or more fire this): a worker or the service dies and is started "
            "again. Its logs say why (killed for memory, an exception at start).",
            service.link(RUNTIME, instance=True),
        ),
        _alert(
            "ServiceFileDescriptorsNearLimit",
            f"max by (job, instance) (process_open_fds{sel()} / process_max_fds{sel()}) > 0.8",
            "warning",
            "A process of {{ $labels.instance }} ({{ $labels.job }}) nears its file "
            "descriptor limit",
            "A process of {{ $labels.instance }} has {{ $value | humanizePercentage }} of its "
            "file descriptors open (above 80% for 10 minutes): at the limit it can accept no "
            "connection and open no file.",
            service.link(RUNTIME, instance=True),
            "10m",
        ),
        _alert(
            "DatabasePoolExhausted",
            (
                "max by (job, instance) (\n"
                f"  {POOL}_pending_requests{sel()} > 0\n"
                f"  and ignoring ({POOL}_state)\n"
                f"  {used}\n"
                f"    >= ignoring ({POOL}_state) {POOL}_max{sel()}\n)"
            ),
            "warning",
            "A database pool of {{ $labels.instance }} ({{ $labels.job }}) is exhausted",
            "A worker of {{ $labels.instance }} has had every connection of its pool in use "
            "and requests waiting for one for 5 minutes ({{ $value }} waiting now). Raise "
            "DB_POOL_SIZE or DB_MAX_OVERFLOW, or find what holds connections.",
            service.link(DATABASE, instance=True),
            "5m",
        ),
        _alert(
            "DatabasePoolTimeouts",
            (
                f"sum by (job, instance) (rate({POOL}_timeouts_total{sel()}[10m]))\n"
                "/ on (job, instance)\n"
                "sum by (job, instance) "
                f"(rate({POOL}_wait_time_seconds_count{sel()}[10m])) > 0.01\n"
                "and on (job, instance)\n"
                f"sum by (job, instance) (increase({POOL}_timeouts_total{sel()}[10m])) >= 5"
            ),
            "warning",
            "Requests of {{ $labels.instance }} ({{ $labels.job }}) time out waiting for a "
            "database connection",
            "{{ $value | humanizePercentage }} of the connection checkouts of "
            "{{ $labels.instance }} in the last 10 minutes waited DB_POOL_TIMEOUT in vain "
            "(above 1%, and 5 or more, for 5 minutes now); each is a 503 "
            "database_unavailable. Raise DB_POOL_SIZE or DB_MAX_OVERFLOW, or find what "
            "holds connections.",
            service.link(DATABASE, instance=True),
            "5m",
        ),
    ]


def recording_file(service: Service) -> dict[str, Any]:
    return {"groups": recording_groups(service)}


def _with_runbooks(service: Service, rules: list[Rule]) -> list[Rule]:
    for rule in rules:
        rule["annotations"]["runbook_url"] = service.runbook(rule["alert"])
    return rules


def alerts_file(service: Service) -> dict[str, Any]:
    return {
        "groups": [
            {
                "name": f"{service.job}-slo-alerts",
                "rules": _with_runbooks(service, slo_alerts(service)),
            },
            {
                "name": f"{service.job}-service-alerts",
                "rules": _with_runbooks(service, service_alerts(service)),
            },
        ]
    }


def alert_names(service: Service) -> list[str]:
    return [rule["alert"] for group in alerts_file(service)["groups"] for rule in group["rules"]]
