"""Objectives other than the defaults, for the tiers that judge the rules by
them: the rules' promtool tests run once for each set (tests/test_rules.py),
and the render matrix (tests/test_matrix.py) generates projects with them and
checks that their rules are the ones those tests ran."""

from __future__ import annotations

OBJECTIVES: dict[str, dict[str, str]] = {
    # Common choices: availability stricter than the default, latency looser.
    "common": {
        "slo_availability": "99.95",
        "slo_latency_seconds": "0.25",
        "slo_latency_target": "95",
    },
    # The limits the pre-generation hook allows: the largest availability budget
    # a fast burn can still spend, the smallest latency budget, the last bucket.
    "limits": {
        "slo_availability": "93.06",
        "slo_latency_seconds": "10",
        "slo_latency_target": "99.9999",
    },
}
