"""Building blocks for the kit's dashboards, on grafana-foundation-sdk.

Every panel and query points at the ``${datasource}`` variable (never a
data source uid, never an ``__inputs`` placeholder), so one file works for
Grafana's import and for file provisioning alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from grafana_foundation_sdk.builders import bargauge, common, prometheus, stat, timeseries
from grafana_foundation_sdk.builders import dashboard as builder
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models.common import (
    BigValueGraphMode,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    GridPos,
    Threshold,
    ThresholdsMode,
    VariableModel,
    VariableRefresh,
    VariableSort,
)

# The panel builders the kit uses; each returns its own type from every setter.
PanelBuilder = timeseries.Panel | stat.Panel | bargauge.Panel
P = TypeVar("P", timeseries.Panel, stat.Panel, bargauge.Panel)

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
TAG = "observability-kit"
RATE = "$__rate_interval"
REQUESTS = "http_server_request_duration_seconds"
# The metric that names the kit's services; the job and instance lists come from it.
SERVICE_METRIC = f"{REQUESTS}_count"


def sel(*matchers: str) -> str:
    """The dashboard's job and instance selection, plus ``matchers``."""
    return "{" + ", ".join(('job=~"$job"', 'instance=~"$instance"', *matchers)) + "}"


def named_routes(expr: str) -> str:
    """``expr`` with the unmatched requests' empty route shown as "(no route)"."""
    return f'label_replace({expr}, "http_route", "(no route)", "http_route", "")'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = "__auto"
    exemplar: bool = False
    instant: bool = False


@dataclass
class Spec:
    """A panel and its width and height on the 24-column grid."""

    panel: PanelBuilder
    width: int
    height: int


def _target(query: Query, ref: str) -> prometheus.Dataquery:
    target = (
        prometheus.Dataquery()
        .datasource(DATASOURCE)
        .expr(query.expr)
        .legend_format(query.legend)
        .ref_id(ref)
    )
    if query.exemplar:
        target = target.exemplar(True)
    return target.instant() if query.instant else target.range()


def _common(panel: P, title: str, description: str, unit: str, queries: list[Query]) -> P:
    panel = panel.title(title).description(description).unit(unit).datasource(DATASOURCE)
    for index, query in enumerate(queries):
        panel = panel.with_target(_target(query, chr(ord("A") + index)))
    return panel


def _thresholds(steps: list[tuple[float | None, str]]) -> builder.ThresholdsConfig:
    return (
        builder.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def graph(
    title: str,
    description: str,
    unit: str,
    *queries: Query,
    width: int = 12,
    height: int = 8,
    stacked: bool = False,
    min_value: float | None = 0,
) -> Spec:
    panel = (
        _common(timeseries.Panel(), title, description, unit, list(queries))
        .line_width(1)
        .fill_opacity(25 if stacked else 10)
        .legend(
            common.VizLegendOptions()
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    if stacked:
        panel = panel.stacking(common.StackingConfig().mode(StackingMode.NORMAL))
    if min_value is not None:
        panel = panel.min(min_value)
    return Spec(panel, width, height)


def single(
    title: str,
    description: str,
    unit: str,
    *queries: Query,
    width: int = 4,
    height: int = 4,
    steps: list[tuple[float | None, str]] | None = None,
    decimals: int | None = None,
) -> Spec:
    panel = (
        _common(stat.Panel(), title, description, unit, list(queries))
        .graph_mode(BigValueGraphMode.AREA)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
        .thresholds(_thresholds(steps or [(None, "green")]))
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    return Spec(panel, width, height)


def ranking(
    title: str, description: str, unit: str, query: Query, width: int = 12, height: int = 8
) -> Spec:
    panel = (
        _common(bargauge.Panel(), title, description, unit, [query])
        .orientation(VizOrientation.HORIZONTAL)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
        .thresholds(_thresholds([(None, "blue")]))
        .min(0)
    )
    return Spec(panel, width, height)


def variables() -> list[Builder[VariableModel]]:
    return [
        builder.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        builder.QueryVariable("job")
        .label("Job")
        .description("Scrape jobs of services that expose the kit's HTTP metrics.")
        .datasource(DATASOURCE)
        .query(f"label_values({SERVICE_METRIC}, job)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True),
        builder.QueryVariable("instance")
        .label("Instance")
        .description("Instances of the selected jobs.")
        .datasource(DATASOURCE)
        .query(f'label_values({SERVICE_METRIC}{{job=~"$job"}}, instance)')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*"),
    ]


def dashboard(uid: str, title: str, description: str, rows: list[list[Spec]]) -> builder.Dashboard:
    """A dashboard with the kit's variables and links, its panels laid out row by row."""
    board = (
        builder.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .variables(variables())
        # Grafana's own annotations and alerts, as every exported dashboard lists them.
        .annotation(
            builder.AnnotationQuery()
            .name("Annotations & Alerts")
            .datasource(DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
            .type("dashboard")
            .built_in(1)
        )
        .link(
            builder.DashboardLink("Observability kit")
            .type(DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
    y, panel_id = 0, 1
    for row in rows:
        x = 0
        for spec in row:
            assert x + spec.width <= 24, f"{title}: row too wide"
            board = board.with_panel(
                spec.panel.id(panel_id).grid_pos(GridPos(h=spec.height, w=spec.width, x=x, y=y))
            )
            x += spec.width
            panel_id += 1
        y += max(spec.height for spec in row)
    return board
