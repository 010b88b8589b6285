"""Service level objectives: objectives, error budget left and burn rates.

Fed by the recording rules each project renders for its own job and
objectives (``grafana/rules/recording.yml``, monitoring/rules.py), which
aggregate by job: the board shows one job, and reads that job's objectives
from ``slo:objective:ratio``, so one board serves services with different
objectives. It has no instance choice: nothing here is by instance.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from ..panels import JOB, Query, Spec, dashboard, graph, single
from ..rules import SERVICE_LEVELS
from ..slo import BURN_ALERTS, SLO_WINDOW

SLOS = (
    ("availability", "Availability", "Share of requests answered without a 5xx status"),
    (
        "latency",
        "Latency",
        "Share of requests answered within the objective's threshold, without a 5xx status",
    ),
)
BURN_WINDOWS = ("5m", "1h", "6h", "1d", "3d")
# The burn rates the alerts fire above (page, then ticket).
THRESHOLDS = sorted({rate for alert in BURN_ALERTS for _, _, rate in alert.conditions})


def _sel(slo: str) -> str:
    return f'{{{JOB}, slo="{slo}"}}'


def _ratio(slo: str, window: str) -> str:
    return f"sum by (job) (slo:sli_error:ratio_rate{window}{_sel(slo)})"


def _budget(slo: str) -> str:
    """The share of requests the objective lets fail, from the job's own objective."""
    return f"(1 - max by (job) (slo:objective:ratio{_sel(slo)}))"


def _stats(slo: str, title: str, met: str) -> list[Spec]:
    return [
        single(
            f"{title} over {SLO_WINDOW}",
            f"{met}, over the last {SLO_WINDOW}. The objective it is held to is in "
            "Objectives; the budget left says whether it is met.",
            "percentunit",
            Query(f"1 - {_ratio(slo, SLO_WINDOW)}", "{{job}}"),
            width=5,
            steps=[(None, "blue")],
            decimals=3,
        ),
        single(
            f"{title} error budget left",
            f"Share of the {SLO_WINDOW} error budget (the requests the objective lets "
            "miss it) not spent yet; below zero the objective is missed, and the "
            "SLOErrorBudgetExhausted ticket is open.",
            "percentunit",
            Query(f"sum by (job) (slo:error_budget_remaining:ratio{_sel(slo)})", "{{job}}"),
            width=5,
            steps=[(None, "red"), (0, "orange"), (0.25, "green")],
            decimals=1,
        ),
    ]


def _burn(slo: str, title: str) -> Spec:
    return graph(
        f"{title} burn rate",
        "How fast the error budget is spent, by window: 1 spends exactly the budget over "
        f"{SLO_WINDOW}. The dashed lines are the alerts' thresholds: a page above 14.4 "
        "(1h and 5m) or 6 (6h and 30m), a ticket above 3 (1d and 2h) or 1 (3d and 6h).",
        "short",
        *(
            Query(f"{_ratio(slo, window)} / on (job) {_budget(slo)}", f"{{{{job}}}} {window}")
            for window in BURN_WINDOWS
        ),
        lines=[(rate, "red" if rate >= 6 else "orange") for rate in THRESHOLDS],
    )


def _ratios(slo: str, bad: str) -> Spec:
    return graph(
        f"{bad} vs budget",
        f"{bad} over 5 minutes and 1 hour, against the budget (the share the objective "
        "lets fail): a line that stays above the budget spends it faster than the "
        "objective allows.",
        "percentunit",
        Query(_ratio(slo, "5m"), "{{job}} 5m"),
        Query(_ratio(slo, "1h"), "{{job}} 1h"),
        Query(_budget(slo), "budget"),
    )


def build() -> Dashboard:
    return dashboard(
        SERVICE_LEVELS,
        "Service level objectives",
        f"Availability and latency objectives of one service over {SLO_WINDOW}, its error "
        "budget and burn rates, from the recording rules rendered for it.",
        [
            [
                *_stats(*SLOS[0]),
                *_stats(*SLOS[1]),
                single(
                    "Objectives",
                    "The service's objectives, as its rules record them "
                    "(grafana/rules/recording.yml, rendered for the project).",
                    "percentunit",
                    Query(f"max by (slo) (slo:objective:ratio{{{JOB}}})", "{{slo}}"),
                    decimals=2,
                ),
            ],
            [_burn("availability", "Availability"), _burn("latency", "Latency")],
            [
                _ratios("availability", "Error ratio (5xx)"),
                _ratios("latency", "Slow request ratio"),
            ],
            [
                graph(
                    f"Error budget burn-down ({SLO_WINDOW})",
                    f"Share of each objective's error budget left, over the last {SLO_WINDOW} "
                    "whatever the dashboard's range: the budget spent, day by day.",
                    "percentunit",
                    Query(
                        f"sum by (job, slo) (slo:error_budget_remaining:ratio{{{JOB}}})",
                        "{{job}} {{slo}}",
                    ),
                    width=24,
                    min_value=None,
                    lines=[(0.0, "red")],
                    time_from=SLO_WINDOW,
                ),
            ],
        ],
        instances=False,
    )
