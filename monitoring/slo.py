"""The service level objectives: a project's values, and what the rules make of them.

A project's objectives are values of its template context (``slo_availability``,
``slo_latency_seconds``, ``slo_latency_target``; today's defaults when absent),
so the rules rendered for it (rules.py) judge it by its own. Everything here is
plain Python: the post-generation hook imports it without the Grafana SDK.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REQUESTS = "http_server_request_duration_seconds_count"
BUCKETS = "http_server_request_duration_seconds_bucket"

# docs/contract.md, section 7: a latency threshold must be one of these bounds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

# The context values a project sets its objectives with, and their defaults.
DEFAULTS: dict[str, float] = {
    "slo_availability": 0.999,
    "slo_latency_seconds": 0.5,
    "slo_latency_target": 0.99,
}

# The SLO window over which the error budget is spent; Prometheus must keep
# more than this (the compose stack keeps RETENTION).
SLO_WINDOW = "30d"
RETENTION = "35d"

# Where Grafana serves the kit's dashboards, for the alerts' links (the local
# stack's); a project may set ``grafana_url`` in its context.
GRAFANA_URL = "http://localhost:3000"


def number(value: float) -> str:
    """A number as the rules and their texts write it: 0.001, not 0.0010000000000000009."""
    return f"{value:.10g}"


def percent(ratio: float) -> str:
    return f"{ratio * 100:.10g}%"


def le(seconds: float) -> str:
    """A bucket bound as the services expose it and Prometheus 3 stores it ("1.0")."""
    return repr(float(seconds))


# An objective must leave an error budget the fastest burn rate can reach
# (below 1/14.4 of the requests) with room to spare, and promise something.
LOWEST_OBJECTIVE = 0.95


@dataclass(frozen=True)
class Objectives:
    availability: float
    latency_seconds: float
    latency_target: float


def problems(context: Mapping[str, Any]) -> list[str]:
    """What is wrong with the context's objectives (empty when nothing)."""
    found = []
    for key in ("slo_availability", "slo_latency_target"):
        value = _float(context.get(key, DEFAULTS[key]))
        if value is None or not LOWEST_OBJECTIVE <= value < 1:
            found.append(
                f"{key} {context.get(key)!r} must be a share of requests from "
                f"{LOWEST_OBJECTIVE} up to, not including, 1 (e.g. {DEFAULTS[key]}): the "
                "fast-burn page needs an error budget well below 1/14.4 of the requests."
            )
    seconds = _float(context.get("slo_latency_seconds", DEFAULTS["slo_latency_seconds"]))
    if seconds is None or seconds not in DURATION_BUCKETS:
        found.append(
            f"slo_latency_seconds {context.get('slo_latency_seconds')!r} must be one of the "
            "duration histogram's bucket bounds: "
            + ", ".join(number(bound) for bound in DURATION_BUCKETS)
            + "."
        )
    return found


def objectives(context: Mapping[str, Any]) -> Objectives:
    """The context's objectives, today's defaults for those it does not set."""
    found = problems(context)
    if found:
        raise ValueError(" ".join(found))
    values = {key: _float(context.get(key, default)) for key, default in DEFAULTS.items()}
    return Objectives(
        availability=values["slo_availability"] or 0.0,
        latency_seconds=values["slo_latency_seconds"] or 0.0,
        latency_target=values["slo_latency_target"] or 0.0,
    )


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        found = float(value)
    except (TypeError, ValueError):
        return None
    return found if math.isfinite(found) else None


@dataclass(frozen=True)
class Objective:
    """One objective of one service (its scrape job)."""

    slo: str  # the value of the `slo` label on every series of this objective
    target: float  # the share of good requests promised over the SLO window
    title: str
    summary: str
    job: str
    latency_seconds: float | None = None  # the latency objective's threshold

    @property
    def matcher(self) -> str:
        return f'slo="{self.slo}"'

    @property
    def budget(self) -> float:
        return float(number(1 - self.target))

    def bad_rate(self, window: str) -> str:
        """The rate of requests that miss the objective over ``window``, by job."""
        job = f'job="{self.job}"'
        total = f"sum by (job) (rate({REQUESTS}{{{job}}}[{window}]))"
        if self.latency_seconds is None:
            errors = f'{REQUESTS}{{{job}, http_response_status_code=~"5.."}}'
            # Without any 5xx series yet, none failed (rather than no data).
            return f"sum by (job) (rate({errors}[{window}]))\nor\n{total} * 0"
        # Good: answered within the threshold, and not with a 5xx (a request shed
        # or refused at once is fast, and not served).
        good = (
            f'{BUCKETS}{{{job}, le="{le(self.latency_seconds)}", http_response_status_code!~"5.."}}'
        )
        return f"{total}\n-\n(\n  sum by (job) (rate({good}[{window}]))\n  or\n  {total} * 0\n)"


def service_objectives(job: str, values: Objectives) -> tuple[Objective, Objective]:
    availability = Objective(
        slo="availability",
        target=values.availability,
        title="Availability",
        summary=f"{percent(values.availability)} of requests are answered without a 5xx status",
        job=job,
    )
    latency = Objective(
        slo="latency",
        target=values.latency_target,
        title="Latency",
        summary=(
            f"{percent(values.latency_target)} of requests are answered within "
            f"{number(values.latency_seconds)} s, without a 5xx status"
        ),
        job=job,
        latency_seconds=values.latency_seconds,
    )
    return availability, latency


@dataclass(frozen=True)
class BurnAlert:
    """A multi-window, multi-burn-rate alert (the Google SRE workbook's table)."""

    speed: str  # "Fast" pages, "Slow" opens a ticket
    pace: str  # how the summary says it
    severity: str
    pending: str  # the alert's `for`
    # (long window, short window, burn rate): the alert fires when both
    # windows burn the budget faster than the burn rate.
    conditions: tuple[tuple[str, str, float], ...]


BURN_ALERTS = (
    BurnAlert("Fast", "fast", "critical", "2m", (("1h", "5m", 14.4), ("6h", "30m", 6.0))),
    BurnAlert("Slow", "steadily", "warning", "15m", (("1d", "2h", 3.0), ("3d", "6h", 1.0))),
)
# Ratios over these windows are recorded at every evaluation; the longer ones
# (LONG_WINDOWS) read days of samples and change slowly, so they are
# recorded less often (LONG_INTERVAL), as is the ratio over the SLO window.
SHORT_WINDOWS = ("5m", "30m", "1h", "2h", "6h")
LONG_WINDOWS = ("1d", "3d")
WINDOWS = SHORT_WINDOWS + LONG_WINDOWS
# Well within Prometheus' 5-minute lookback, so a recorded ratio is never stale.
LONG_INTERVAL = "2m"

SECONDS = {"m": 60, "h": 3600, "d": 86400}


def seconds(window: str) -> int:
    return int(window[:-1]) * SECONDS[window[-1]]


def least_requests(rate: float, budget: float) -> int:
    """The fewest requests over an alert's long window for which one bad request
    alone stays within ``rate`` times the budget: below it, the alert waits."""
    return math.ceil(1 / (rate * budget) - 1e-9)
