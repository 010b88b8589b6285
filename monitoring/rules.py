"""Prometheus recording and alerting rules (``grafana/rules/``).

The SLO rules follow the Google SRE workbook: error ratios over several
windows, recorded once, and alerts that fire only when a long and a short
window both burn the error budget too fast.
"""

from __future__ import annotations

from typing import Any

from .slo import BURN_ALERTS, OBJECTIVES, REQUESTS, SLO_WINDOW, WINDOWS, Objective

Rule = dict[str, Any]


def _total(window: str) -> str:
    return f"sum by (job) (rate({REQUESTS}[{window}]))"


def _indent(expr: str, spaces: int = 2) -> str:
    return "\n".join(" " * spaces + line for line in expr.splitlines())


def recording_rules() -> list[Rule]:
    rules: list[Rule] = [
        {
            "record": "slo:objective:ratio",
            "expr": f"vector({objective.target})",
            "labels": {"slo": objective.slo},
        }
        for objective in OBJECTIVES
    ]
    for objective in OBJECTIVES:
        labels = {"slo": objective.slo}
        rules += [
            {"record": "slo:sli_requests:rate5m", "expr": _total("5m"), "labels": labels},
            {"record": "slo:sli_errors:rate5m", "expr": objective.bad_rate("5m"), "labels": labels},
        ]
        rules += [
            {
                "record": f"slo:sli_error:ratio_rate{window}",
                # Without traffic there is no ratio (rather than NaN).
                "expr": f"(\n{_indent(objective.bad_rate(window))}\n)\n/\n({_total(window)} > 0)",
                "labels": labels,
            }
            for window in WINDOWS
        ]
    rules += [
        {
            "record": f"slo:sli_error:ratio_rate{SLO_WINDOW}",
            "expr": (
                f"sum_over_time(slo:sli_errors:rate5m[{SLO_WINDOW}])\n/\n"
                f"(sum_over_time(slo:sli_requests:rate5m[{SLO_WINDOW}]) > 0)"
            ),
        },
        {
            "record": "slo:error_budget_remaining:ratio",
            "expr": (
                f"1 - slo:sli_error:ratio_rate{SLO_WINDOW}\n"
                "/ on (slo) group_left ()\n(1 - slo:objective:ratio)"
            ),
        },
    ]
    return rules


def _burning(objective: Objective, window: str, rate: float) -> str:
    return (
        f'slo:sli_error:ratio_rate{window}{{slo="{objective.slo}"}}\n'
        f"  > on (slo) group_left ()\n  ({rate:g} * (1 - slo:objective:ratio))"
    )


def slo_alerts() -> list[Rule]:
    rules = []
    for objective in OBJECTIVES:
        for alert in BURN_ALERTS:
            branches = [
                f"(\n{_indent(_burning(objective, long, rate))}\n  and\n"
                f"{_indent(_burning(objective, short, rate))}\n)"
                for long, short, rate in alert.conditions
            ]
            windows = " or ".join(
                f"{rate:g}x over {long} and {short}" for long, short, rate in alert.conditions
            )
            rules.append(
                {
                    "alert": f"SLO{objective.title}{alert.speed}Burn",
                    "expr": "\nor\n".join(branches),
                    "for": alert.pending,
                    "labels": {"severity": alert.severity},
                    "annotations": {
                        "summary": (
                            f"{{{{ $labels.job }}}} is burning its {objective.slo} error budget "
                            f"{alert.pace}"
                        ),
                        "description": (
                            f"Objective: {objective.summary}, over {SLO_WINDOW} (an error "
                            f"budget of {1 - objective.target:.1%}). Requests fail it at a "
                            f"burn rate above {windows}."
                        ),
                    },
                }
            )
    return rules


def service_alerts() -> list[Rule]:
    pool = "db_client_connection"
    return [
        {
            "alert": "ServiceNotReady",
            "expr": "min by (job, instance) (service_ready) == 0",
            "for": "2m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{ $labels.instance }} of {{ $labels.job }} is not ready",
                "description": (
                    "The readiness check (/ready) has failed for 2 minutes: the database "
                    "does not answer, or the instance is draining and did not stop."
                ),
            },
        },
        {
            "alert": "DatabasePoolExhausted",
            "expr": (
                f"sum by (job, instance) (rate({pool}_timeouts_total[5m])) > 0\n"
                "or\n(\n"
                f'  sum by (job, instance) (db_client_connections{{{pool}_state="used"}})\n'
                f"  >= on (job, instance) sum by (job, instance) ({pool}_max)\n"
                "  and on (job, instance)\n"
                f"  sum by (job, instance) ({pool}_pending_requests) > 0\n)"
            ),
            "for": "5m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "The database pool of {{ $labels.instance }} ({{ $labels.job }}) "
                "is exhausted",
                "description": (
                    "For 5 minutes requests have waited for a database connection, or timed "
                    "out waiting (503 database_unavailable). Raise DB_POOL_SIZE or "
                    "DB_MAX_OVERFLOW, or find what holds connections."
                ),
            },
        },
        {
            "alert": "ScrapeTargetDown",
            "expr": "up == 0",
            "for": "2m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Prometheus cannot scrape {{ $labels.instance }} ({{ $labels.job }})",
                "description": "The target has not answered /metrics for 2 minutes.",
            },
        },
    ]


def recording_file() -> dict[str, Any]:
    return {"groups": [{"name": "slo", "rules": recording_rules()}]}


def alerts_file() -> dict[str, Any]:
    return {
        "groups": [
            {"name": "slo-burn-rate", "rules": slo_alerts()},
            {"name": "service", "rules": service_alerts()},
        ]
    }
