"""The service level objectives, defined once for the rules and the SLO dashboard."""

from __future__ import annotations

from dataclasses import dataclass

REQUESTS = "http_server_request_duration_seconds_count"
BUCKETS = "http_server_request_duration_seconds_bucket"

# The latency objective counts requests answered within this many seconds;
# it must be one of the histogram's bucket bounds (contract, section 7).
LATENCY_THRESHOLD = "0.5"


@dataclass(frozen=True)
class Objective:
    slo: str  # the value of the `slo` label on every series of this objective
    target: float  # the share of good requests promised over the SLO window
    title: str
    # The rate of bad requests over ``window`` (a PromQL duration), by job.
    bad: str
    summary: str

    def bad_rate(self, window: str) -> str:
        return self.bad.replace("$window", window)


AVAILABILITY = Objective(
    slo="availability",
    target=0.999,
    title="Availability",
    bad=(
        f'sum by (job) (rate({REQUESTS}{{http_response_status_code=~"5.."}}[$window]))\n'
        f"or\nsum by (job) (rate({REQUESTS}[$window])) * 0"
    ),
    summary="99.9% of requests are answered without a 5xx status",
)
LATENCY = Objective(
    slo="latency",
    target=0.99,
    title="Latency",
    bad=(
        f"sum by (job) (rate({REQUESTS}[$window]))\n-\n"
        f'sum by (job) (rate({BUCKETS}{{le="{LATENCY_THRESHOLD}"}}[$window]))'
    ),
    summary=f"99% of requests are answered within {LATENCY_THRESHOLD} s",
)
OBJECTIVES = (AVAILABILITY, LATENCY)

# The SLO window over which the error budget is spent.
SLO_WINDOW = "30d"


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
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
