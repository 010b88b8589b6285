"""Reading the kit's dashboards: their panels, queries and variables, and their
PromQL parsed with a real parser (promql-parser) once Grafana's variables are
substituted the way Grafana would."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import promql_parser

from .render import KIT_ROOT

DASHBOARDS = KIT_ROOT / "grafana" / "dashboards"
LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")
# Functions a counter is read through, and those that may take a range selector.
COUNTER_FUNCTIONS = {"rate", "irate", "increase"}
RANGE_FUNCTIONS = COUNTER_FUNCTIONS | {"changes", "count_over_time"}


def load() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' collapsed panels included, rows themselves excluded."""
    found = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            found += panel.get("panels", [])
        else:
            found.append(panel)
    return found


@dataclass(frozen=True)
class Target:
    board: str
    panel: dict[str, Any]
    target: dict[str, Any]

    @property
    def expr(self) -> str:
        return str(self.target["expr"])

    @property
    def where(self) -> str:
        return f"{self.board} / {self.panel['title']} / {self.target.get('refId')}"


def _targets(boards: dict[str, dict[str, Any]] | None, kind: str) -> Iterator[Target]:
    for name, board in (boards or load()).items():
        for panel in panels(board):
            for target in panel.get("targets", []):
                if target.get("datasource", panel["datasource"])["type"] == kind:
                    yield Target(name, panel, target)


def targets(boards: dict[str, dict[str, Any]] | None = None) -> Iterator[Target]:
    """The PromQL queries of every panel."""
    return _targets(boards, "prometheus")


def log_targets(boards: dict[str, dict[str, Any]] | None = None) -> Iterator[Target]:
    """The LogQL queries of every panel (Loki)."""
    return _targets(boards, "loki")


@dataclass(frozen=True)
class DataLink:
    board: str
    panel: dict[str, Any]
    link: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.board} / {self.panel['title']} / {self.link['title']}"

    def explore_pane(self) -> dict[str, Any]:
        """The Explore pane the link opens (its only one), decoded from the URL."""
        url = urlsplit(str(self.link["url"]))
        assert url.path == "/explore", f"{self.where}: not an Explore link"
        query = parse_qs(url.query)
        assert query.get("schemaVersion") == ["1"], f"{self.where}: {url.query}"
        (panes,) = query["panes"]
        (pane,) = json.loads(panes).values()
        return dict(pane)


def data_links(boards: dict[str, dict[str, Any]] | None = None) -> Iterator[DataLink]:
    """Every data link of every panel."""
    for name, board in (boards or load()).items():
        for panel in panels(board):
            for link in panel.get("fieldConfig", {}).get("defaults", {}).get("links", []):
                yield DataLink(name, panel, link)


@dataclass(frozen=True)
class Annotation:
    """A dashboard's annotation query (Prometheus' ``expr``), e.g. its deploys."""

    board: str
    annotation: dict[str, Any]

    @property
    def expr(self) -> str:
        return str(self.annotation["expr"])

    @property
    def where(self) -> str:
        return f"{self.board} / annotation {self.annotation['name']}"


def annotation_queries(boards: dict[str, dict[str, Any]] | None = None) -> Iterator[Annotation]:
    for name, board in (boards or load()).items():
        for annotation in board.get("annotations", {}).get("list", []):
            if annotation.get("expr"):
                yield Annotation(name, annotation)


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def regex_value(value: str) -> str:
    """A variable's value in a ``=~"..."`` matcher, escaped as Grafana escapes it."""
    return re.sub(r"([$^*{}\[\]'+?.()|\\])", r"\\\\\1", value)


def substitute(
    text: str,
    job: str = "example-service",
    instance: str = ".*",
    rate: str = "30s",
    range_: str = "1h",
) -> str:
    """``text`` as Grafana sends it with ``job`` (a single choice, sent as it is),
    ``instance`` (a regex) and the time range ``range_`` (``$__range``) selected."""
    return (
        text.replace("$__rate_interval", rate)
        .replace("$__range", range_)
        .replace("${job}", job)
        .replace("$job", job)
        .replace("${instance}", instance)
        .replace("$instance", instance)
    )


def variable_query(variable: dict[str, Any]) -> str:
    query = variable["query"]
    return str(query["query"] if isinstance(query, dict) else query)


def parse_label_values(query: str) -> tuple[str | None, str]:
    """``label_values(selector, label)`` as (selector, label)."""
    match = LABEL_VALUES.match(query.strip())
    assert match, f"not a label_values() query: {query}"
    return match["selector"], match["label"]


# --- the PromQL syntax tree ---------------------------------------------------


@dataclass(frozen=True)
class Node:
    node: Any
    ancestors: tuple[Any, ...]


def children(node: Any) -> list[Any]:
    if isinstance(node, promql_parser.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, promql_parser.AggregateExpr):
        return [node.expr] + ([node.param] if node.param is not None else [])
    if isinstance(node, promql_parser.Call):
        return list(node.args)
    if isinstance(node, promql_parser.MatrixSelector):
        return [node.vector_selector]
    if isinstance(
        node, (promql_parser.ParenExpr, promql_parser.UnaryExpr, promql_parser.SubqueryExpr)
    ):
        return [node.expr]
    return []


def walk(expr: Any, ancestors: tuple[Any, ...] = ()) -> Iterator[Node]:
    yield Node(expr, ancestors)
    for child in children(expr):
        yield from walk(child, (*ancestors, expr))


def parse(expr: str) -> Any:
    return promql_parser.parse(expr)


def selectors(expr: str) -> list[Node]:
    return [n for n in walk(parse(expr)) if isinstance(n.node, promql_parser.VectorSelector)]


# promql_parser's MatchOp is not hashable: its members by name.
OPERATORS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def matchers(selector: Any) -> dict[str, tuple[str, str]]:
    """A selector's label matchers: label -> (operator, value), e.g. ``("=~", "$job")``."""
    return {
        m.name: (OPERATORS[str(m.op).rsplit(".", 1)[-1]], m.value)
        for m in selector.matchers.matchers
    }


def function_name(node: Any) -> str | None:
    return str(node.func.name) if isinstance(node, promql_parser.Call) else None


def is_aggregation(node: Any) -> bool:
    return isinstance(node, promql_parser.AggregateExpr)
