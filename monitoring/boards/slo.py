"""Service level objectives: objectives, error budget left and burn rates.

Fed by the recording rules of ``grafana/rules/recording.yml`` (monitoring/rules.py),
which aggregate by job: the board selects jobs, not instances.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from ..panels import Query, Spec, dashboard, graph, single
from ..slo import AVAILABILITY, LATENCY, SLO_WINDOW, Objective

JOB = 'job=~"$job"'
BURN_WINDOWS = ("5m", "1h", "6h", "3d")


def _ratio(objective: Objective, window: str) -> str:
    return f'sum by (job) (slo:sli_error:ratio_rate{window}{{{JOB}, slo="{objective.slo}"}})'


def _budget(objective: Objective) -> str:
    return f'(1 - max(slo:objective:ratio{{slo="{objective.slo}"}}))'


def _stats(objective: Objective, met: str) -> list[Spec]:
    target = objective.target
    return [
        single(
            f"{objective.title} over {SLO_WINDOW}",
            f"{met} over the last {SLO_WINDOW}. Objective: {objective.summary}.",
            "percentunit",
            Query(f"1 - {_ratio(objective, SLO_WINDOW)}", "{{job}}"),
            width=5,
            steps=[(None, "red"), (target, "green")],
            decimals=3,
        ),
        single(
            f"{objective.title} error budget left",
            f"Share of the {SLO_WINDOW} error budget ({1 - target:.1%} of requests) not "
            "spent yet; below zero the objective is missed.",
            "percentunit",
            Query(
                f'sum by (job) (slo:error_budget_remaining:ratio{{{JOB}, slo="{objective.slo}"}})',
                "{{job}}",
            ),
            width=5,
            steps=[(None, "red"), (0, "orange"), (0.25, "green")],
            decimals=1,
        ),
    ]


def _burn(objective: Objective) -> Spec:
    return graph(
        f"{objective.title} burn rate",
        "How fast the error budget is spent, by window: 1 spends exactly the budget over "
        f"{SLO_WINDOW}. The alerts page above 14.4 (1h and 5m) or 6 (6h and 30m) and open "
        "a ticket above 3 (1d and 2h) or 1 (3d and 6h).",
        "short",
        *(
            Query(
                f"{_ratio(objective, window)} / on () group_left () {_budget(objective)}",
                f"{{{{job}}}} {window}",
            )
            for window in BURN_WINDOWS
        ),
    )


def _ratios(objective: Objective, bad: str) -> Spec:
    return graph(
        f"{bad} vs budget",
        f"{bad} over 5 minutes and 1 hour, against the budget ({1 - objective.target:.1%}): "
        "a line that stays above the budget spends it faster than the objective allows.",
        "percentunit",
        Query(_ratio(objective, "5m"), "{{job}} 5m"),
        Query(_ratio(objective, "1h"), "{{job}} 1h"),
        Query(_budget(objective), "budget"),
    )


def build() -> Dashboard:
    return dashboard(
        "kit-service-levels",
        "Service level objectives",
        f"Availability and latency objectives over {SLO_WINDOW}, error budget and burn "
        "rates, from the kit's recording rules.",
        [
            [
                *_stats(AVAILABILITY, "Share of requests answered without a 5xx status"),
                *_stats(LATENCY, "Share of requests answered within the latency threshold"),
                single(
                    "Objectives",
                    "The objectives the rules and alerts use (grafana/rules/recording.yml).",
                    "percentunit",
                    Query("max by (slo) (slo:objective:ratio)", "{{slo}}"),
                    decimals=1,
                ),
            ],
            [_burn(AVAILABILITY), _burn(LATENCY)],
            [
                _ratios(AVAILABILITY, "Error ratio (5xx)"),
                _ratios(LATENCY, "Slow request ratio"),
            ],
            [
                graph(
                    "Error budget left",
                    f"Share of each objective's {SLO_WINDOW} error budget not spent yet.",
                    "percentunit",
                    Query(
                        f"sum by (job, slo) (slo:error_budget_remaining:ratio{{{JOB}}})",
                        "{{job}} {{slo}}",
                    ),
                    width=24,
                    min_value=None,
                ),
            ],
        ],
    )
