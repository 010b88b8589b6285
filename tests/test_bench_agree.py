"""The quick mode's agreement with the full benchmark run (bench/agree.py)."""

from __future__ import annotations

from typing import Any

from bench import agree
from bench.run import ENDPOINTS


def results(rates: dict[tuple[str, str], list[float]], **settings: Any) -> dict[str, Any]:
    """A bench.run result: req/s per (endpoint, variant), one per repeat, for FastAPI."""
    runs = [
        {"framework": "fastapi", "endpoint": e, "variant": v, "repeat": n, "rps": rps}
        for (e, v), values in rates.items()
        for n, rps in enumerate(values)
    ]
    return {"runs": runs, "cold_start_s": {"fastapi": {}}, "settings": settings}


def full_run() -> dict[str, Any]:
    rates: dict[tuple[str, str], list[float]] = {}
    for endpoint in ENDPOINTS:
        # generated / bare: 0.45, 0.50, 0.55; generated / stack: 2.0 each time.
        rates[(endpoint, "bare")] = [1000.0, 1000.0, 1000.0]
        rates[(endpoint, "generated")] = [450.0, 500.0, 550.0]
        rates[(endpoint, "stack")] = [225.0, 250.0, 275.0]
    return results(rates, repeats=3, duration=5, warmup=1, cold_starts=3)


def quick_run(generated: float, stack: float = 250.0) -> dict[str, Any]:
    rates = {}
    for endpoint in ENDPOINTS:
        rates[(endpoint, "bare")] = [1000.0]
        rates[(endpoint, "generated")] = [generated]
        rates[(endpoint, "stack")] = [stack]
    return results(rates, repeats=1, duration=2, warmup=1, cold_starts=1)


def verdicts(quick: dict[str, Any]) -> dict[str, bool]:
    cells, _ = agree.agreement(full_run(), quick)
    return {cell["cell"]: cell["agrees"] for cell in cells}


def test_the_spread_is_each_repeats_own_ratio_widened_by_the_median_spread() -> None:
    cells, tolerance = agree.agreement(full_run(), quick_run(500.0))
    bare = next(c for c in cells if c["cell"] == "trivial, generated / bare")
    assert (bare["low"], bare["full"], bare["high"]) == (0.45, 0.5, 0.55)
    # Spreads relative to the median: 0.2 for every ratio against bare, 0 against
    # the stack; their median (six cells of each) is 0.1.
    assert round(tolerance, 9) == 0.1


def test_a_quick_ratio_inside_the_widened_spread_agrees() -> None:
    # Against bare 0.58: above 0.55, within 0.55 + 0.1 x 0.5; against the
    # stack 2.15: above 2.0, within 2.0 + 0.1 x 2.0.
    assert all(verdicts(quick_run(580.0, stack=270.0)).values())


def test_a_quick_ratio_outside_the_widened_spread_does_not() -> None:
    found = verdicts(quick_run(610.0))  # 0.61 against bare; 2.44 against the stack
    assert found["trivial, generated / bare"] is False
    assert found["postgresql, generated / stack"] is False
    assert found == dict.fromkeys(found, False)
