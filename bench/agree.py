"""Whether the quick mode's ratios agree with the full run's (docs/performance.md).

``make bench-quick`` writes ``bench/quick.json``: one short repeat of every
cell. The full run (``bench/results.json``, the source of docs/performance.md)
has several repeats, each variant's run next to the others' in time, so each
repeat gives its own ratio (generated / bare, generated / stack); their lowest
and highest are the full run's measured spread. The quick ratio agrees when it
lies within that spread, widened for the quick run's own one-sample noise
by the median of the full run's spreads, each relative to its cell's median.

    .venv/bin/python -m bench.agree     # prints the table, exit 1 when a cell disagrees
"""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any

from bench.run import ENDPOINTS, QUICK, ROOT
from bench.run import RESULTS as FULL

AGAINST = ("bare", "stack")

Rates = dict[tuple[str, str, str], dict[int, float]]


def rates(data: dict[str, Any]) -> Rates:
    """req/s by (framework, endpoint, variant), then by repeat."""
    found: Rates = {}
    for run in data["runs"]:
        key = (run["framework"], run["endpoint"], run["variant"])
        found.setdefault(key, {})[run["repeat"]] = run["rps"]
    return found


def ratios(found: Rates, framework: str, endpoint: str, against: str) -> list[float]:
    """generated / ``against``, one per repeat both ran in."""
    generated = found[(framework, endpoint, "generated")]
    other = found[(framework, endpoint, against)]
    return [generated[r] / other[r] for r in sorted(generated.keys() & other.keys())]


def agreement(full: dict[str, Any], quick: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
    """One row per framework, endpoint and comparison; the tolerance applied."""
    full_rates, quick_rates = rates(full), rates(quick)
    frameworks = [f for f in full["cold_start_s"] if f in quick["cold_start_s"]]
    cells = []
    for framework in frameworks:
        for endpoint in ENDPOINTS:
            for against in AGAINST:
                spread = ratios(full_rates, framework, endpoint, against)
                (measured,) = ratios(quick_rates, framework, endpoint, against)[:1]
                cells.append(
                    {
                        "framework": framework,
                        "cell": f"{endpoint}, generated / {against}",
                        "full": statistics.median(spread),
                        "low": min(spread),
                        "high": max(spread),
                        "quick": measured,
                    }
                )
    # Relative: a ratio near 3 moves more in req/s than one near 0.5.
    tolerance = statistics.median((c["high"] - c["low"]) / c["full"] for c in cells)
    for cell in cells:
        margin = tolerance * cell["full"]
        cell["agrees"] = cell["low"] - margin <= cell["quick"] <= cell["high"] + margin
    return cells, tolerance


def _cold_starts(count: int) -> str:
    return f"{count} cold start{'s' if count > 1 else ''}" if count else "no cold start"


def table(full: dict[str, Any], quick: dict[str, Any]) -> list[str]:
    cells, tolerance = agreement(full, quick)
    agreed = sum(cell["agrees"] for cell in cells)
    lines = [
        f"The quick mode took {quick.get('elapsed_s', 0) / 60:.1f} minutes "
        f"(`python -m bench.run --quick`: {quick['settings']['repeats']} repeat of "
        f"{quick['settings']['duration']:g} s after {quick['settings']['warmup']:g} s, "
        f"{_cold_starts(quick['settings']['cold_starts'])}, no scrape). Its ratios against the "
        f"full run's, whose spread is the lowest and highest of its "
        f"{full['settings']['repeats']} repeats, widened by {tolerance:.0%} of the "
        f"median (the full run's median spread): {agreed} of {len(cells)} cells agree.",
        "",
        "| Framework | Ratio | full run, median | full run, spread | quick | agrees |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for c in cells:
        lines.append(
            f"| {c['framework']} | {c['cell']} | {c['full']:.2f} | {c['low']:.2f}-{c['high']:.2f} "
            f"| {c['quick']:.2f} | {'yes' if c['agrees'] else 'no'} |"
        )
    return lines


def main() -> int:
    if not QUICK.exists():
        print(f"no {QUICK.relative_to(ROOT)}: run `make bench-quick`", file=sys.stderr)
        return 1
    full, quick = json.loads(FULL.read_text()), json.loads(QUICK.read_text())
    print("\n".join(table(full, quick)))
    return 0 if all(cell["agrees"] for cell in agreement(full, quick)[0]) else 1


if __name__ == "__main__":
    sys.exit(main())
