"""The service level objectives: a project's values, and what the rules make of them.

A project's objectives are values of its template context (``slo_availability``,
``slo_latency_seconds``, ``slo_latency_target``; today's defaults when absent),
so the rules rendered for it (rules.py) judge it by its own. Everything here is
plain Python: the post-generation hook imports it without the Grafana SDK.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

REQUESTS = "http_server_request_duration_seconds_count"
BUCKETS = "http_server_request_duration_seconds_bucket"

# docs/contract.md, section 7: a latency threshold must be one of these bounds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

# The answers a project sets its objectives with (percentages and seconds, as
# the generation prompts ask for them), and their defaults.
DEFAULTS: dict[str, str] = {
    "slo_availability": "99.9",
    "slo_latency_seconds": "0.5",
    "slo_latency_target": "99",
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


@dataclass(frozen=True)
class Objectives:
    availability: float  # shares of requests, 0.999 for "99.9"
    latency_seconds: float
    latency_target: float


def problems(context: Mapping[str, Any]) -> list[str]:
    """What is wrong with the context's objectives (empty when nothing)."""
    found = []
    for key in ("slo_availability", "slo_latency_seconds", "slo_latency_target"):
        value = _answer(context, key)
        if key == "slo_latency_seconds":
            if not (SECONDS_RE.match(value) and Decimal(value) in LATENCY_BOUNDS):
                found.append(
                    f"{key} {value!r} must be one of the request duration histogram's bucket "
                    f"bounds ({' '.join(map(str, LATENCY_BOUNDS))}; docs/contract.md, section "
                    "7): the latency objective counts the requests in the bucket at the threshold."
                )
        elif not (OBJECTIVE_RE.match(value) and Decimal(value) >= MIN_OBJECTIVE):
            found.append(
                f"{key} {value!r} must be a percentage from {MIN_OBJECTIVE} to below 100 with at "
                f"most 4 decimals, such as {DEFAULTS[key]!r} (100 leaves no error budget; below "
                f"{MIN_OBJECTIVE} the alert that pages at {FASTEST_BURN_RATE} times the budget "
                "could never fire)."
            )
    return found


def objectives(context: Mapping[str, Any]) -> Objectives:
    """The context's objectives, today's defaults for those it does not set."""
    found = problems(context)
    if found:
        raise ValueError(" ".join(found))
    return Objectives(
        availability=float(Decimal(_answer(context, "slo_availability")) / 100),
        latency_seconds=float(Decimal(_answer(context, "slo_latency_seconds"))),
        latency_target=float(Decimal(_answer(context, "slo_latency_target")) / 100),
    )


def _answer(context: Mapping[str, Any], key: str) -> str:
    value = context.get(key, DEFAULTS[key])
    return "" if isinstance(value, bool) else str(value)


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
# The fastest burn rate that pages. Below 100 - 100 / 14.4 = 93.06 % that
# page would need more than every request to fail, so objectives start there.
FASTEST_BURN_RATE = Decimal(str(max(rate for a in BURN_ALERTS for _, _, rate in a.conditions)))
MIN_OBJECTIVE = (100 - 100 / FASTEST_BURN_RATE).quantize(Decimal("0.01"), rounding=ROUND_CEILING)
OBJECTIVE_RE = re.compile(r"^\d{1,2}(?:\.\d{1,4})?$")
SECONDS_RE = re.compile(r"^\d{1,3}(?:\.\d{1,6})?$")
LATENCY_BOUNDS = tuple(Decimal(str(bound)) for bound in DURATION_BUCKETS)

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
