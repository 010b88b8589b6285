"""The README's table of panels and the metrics each one reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import promql_parser


def _selectors(node: Any) -> Iterator[str]:
    if isinstance(node, promql_parser.VectorSelector):
        if node.name:
            yield str(node.name)
        return
    for attribute in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(node, attribute, None)
        if child is not None and not isinstance(child, (int, float, str)):
            yield from _selectors(child)
    if isinstance(node, promql_parser.Call):
        for argument in node.args:
            yield from _selectors(argument)


def metrics(expr: str) -> list[str]:
    """The metric names an expression reads (Grafana's variables filled with stand-ins)."""
    plain = (
        expr.replace("$__rate_interval", "1m")
        .replace("$__range", "1h")
        .replace("$job", "job")
        .replace("$instance", "i")
    )
    return sorted(set(_selectors(promql_parser.parse(plain))))


def _reads(panel: dict[str, Any]) -> str:
    """What a panel reads: the metrics of its PromQL, or the service's logs."""
    if panel["datasource"]["type"] == "loki":
        return "the service's logs (Loki)"
    names = sorted({m for t in panel["targets"] for m in metrics(t["expr"])})
    return ", ".join(f"`{name}`" for name in names)


def panel_table(boards: list[dict[str, Any]]) -> str:
    lines = ["| Dashboard | Panel | Type | Metrics read |", "| --- | --- | --- | --- |"]
    for board in boards:
        for panel in board["panels"]:
            lines.append(
                f"| {board['title']} | {panel['title']} | {panel['type']} | {_reads(panel)} |"
            )
    return "\n".join(lines) + "\n"
