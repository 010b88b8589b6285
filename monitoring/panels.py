"""Building blocks for the kit's dashboards, on grafana-foundation-sdk.

Every panel and query points at a data source variable, ``${datasource}``
(Prometheus) or ``${logs}`` (Loki), never at a data source uid nor an
``__inputs`` placeholder, so one file works for Grafana's import and for
file provisioning alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from grafana_foundation_sdk.builders import (
    bargauge,
    common,
    heatmap,
    logs,
    loki,
    prometheus,
    stat,
    timeseries,
)
from grafana_foundation_sdk.builders import dashboard as builder
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models.common import (
    BigValueGraphMode,
    GraphThresholdsStyleMode,
    LegendDisplayMode,
    LegendPlacement,
    LogsDedupStrategy,
    LogsSortOrder,
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
from grafana_foundation_sdk.models.dashboard import (
    DashboardLink as DashboardLinkModel,
)
from grafana_foundation_sdk.models.heatmap import HeatmapColorMode, HeatmapColorScale
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

# The panel builders the kit uses; each returns its own type from every setter.
PanelBuilder = timeseries.Panel | stat.Panel | bargauge.Panel | heatmap.Panel | logs.Panel
P = TypeVar("P", timeseries.Panel, stat.Panel, bargauge.Panel, heatmap.Panel)

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
LOGS = DataSourceRef(type_val="loki", uid="${logs}")
TAG = "observability-kit"
RATE = "$__rate_interval"
REQUESTS = "http_server_request_duration_seconds"
# The metric that names the kit's services; the job and instance lists come from it.
SERVICE_METRIC = f"{REQUESTS}_count"


# Every board shows one service (its scrape job): a single choice, so no sum
# adds two services up. Its instances are a choice of several, or All.
JOB = 'job="$job"'
INSTANCE = 'instance=~"$instance"'
# The window of a ranking: the dashboard's whole time range.
RANGE = "$__range"


def sel(*matchers: str) -> str:
    """The dashboard's job and instance selection, plus ``matchers``."""
    return "{" + ", ".join((JOB, INSTANCE, *matchers)) + "}"


def named_routes(expr: str) -> str:
    """``expr`` with the unmatched requests' empty route shown as "(no route)"."""
    return f'label_replace({expr}, "http_route", "(no route)", "http_route", "")'


# The service's log streams (docs/contract.md, section 11): labelled with the
# service's name, which is its scrape job, and the line's level.
LOG_STREAM = 'service_name="$job"'
ERROR_LEVELS = 'level=~"error|critical"'


def log_query(*matchers: str, pipeline: str = "") -> str:
    """A LogQL query for the selected service's streams, plus ``matchers`` and
    a ``pipeline`` (``| json | ...``)."""
    selector = "{" + ", ".join((LOG_STREAM, *matchers)) + "}"
    return f"{selector} {pipeline}".strip()


def explore_url(query: str) -> str:
    """Grafana's Explore on the ``${logs}`` data source with ``query``, over the
    dashboard's time range. Only the JSON is percent-encoded: Grafana fills in
    the ``$variables`` of a link before it opens it."""
    pane = {
        "datasource": "$logs",
        "queries": [
            {
                "refId": "A",
                "datasource": {"type": "loki", "uid": "$logs"},
                "expr": query,
                "queryType": "range",
                "editorMode": "code",
            }
        ],
        "range": {"from": "$__from", "to": "$__to"},
    }
    panes = quote(json.dumps({"logs": pane}, separators=(",", ":")), safe="$")
    return f"/explore?schemaVersion=1&orgId=1&panes={panes}"


@dataclass(frozen=True)
class Link:
    """A data link of a panel: a click on a value opens ``query``'s logs in Explore."""

    title: str
    query: str


def data_links(links: list[Link]) -> list[Builder[DashboardLinkModel]]:
    return [
        builder.DashboardLink(link.title).url(explore_url(link.query)).target_blank(False)
        for link in links
    ]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = "__auto"
    exemplar: bool = False
    instant: bool = False
    heatmap: bool = False


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
    if query.heatmap:
        target = target.format(PromQueryFormat.HEATMAP)
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
    lines: list[tuple[float, str]] | None = None,
    time_from: str | None = None,
    links: list[Link] | None = None,
) -> Spec:
    """A time series panel; ``lines`` are thresholds drawn across it (an alert's
    burn rate, a limit), ``time_from`` a fixed range of its own (``30d``),
    ``links`` to the logs behind its values."""
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
    if lines:
        panel = panel.thresholds(_thresholds([(None, "transparent"), *lines])).thresholds_style(
            common.GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.DASHED)
        )
    if time_from:
        panel = panel.time_from(time_from)
    if links:
        panel = panel.data_links(data_links(links))
    return Spec(panel, width, height)


def heat(title: str, description: str, query: Query, width: int = 24, height: int = 8) -> Spec:
    """A heatmap of a histogram's buckets (``query`` with ``heatmap=True``)."""
    panel = (
        _common(heatmap.Panel(), title, description, "s", [query])
        .calculate(False)
        .y_axis(heatmap.YAxisConfig().unit("s"))
        .color(
            heatmap.HeatmapColorOptions()
            .mode(HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .scale(HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
            .steps(64)
        )
        .cell_gap(1)
        .show_legend()
    )
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
    links: list[Link] | None = None,
) -> Spec:
    panel = (
        _common(stat.Panel(), title, description, unit, list(queries))
        .graph_mode(BigValueGraphMode.AREA)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
        .thresholds(_thresholds(steps or [(None, "green")]))
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    if links:
        panel = panel.data_links(data_links(links))
    return Spec(panel, width, height)


def log_lines(title: str, description: str, query: str, width: int = 24, height: int = 10) -> Spec:
    """A logs panel on the ``${logs}`` data source, newest line first."""
    target = loki.Dataquery().datasource(LOGS).expr(query).ref_id("A")
    panel = (
        logs.Panel()
        .title(title)
        .description(description)
        .datasource(LOGS)
        .with_target(target)
        .show_time(True)
        .show_labels(False)
        .show_common_labels(False)
        .wrap_log_message(True)
        .prettify_log_message(False)
        .enable_log_details(True)
        .dedup_strategy(LogsDedupStrategy.NONE)
        .sort_order(LogsSortOrder.DESCENDING)
    )
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


def variables(instances: bool = True, with_logs: bool = False) -> list[Builder[VariableModel]]:
    found: list[Builder[VariableModel]] = [
        builder.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        builder.QueryVariable("job")
        .label("Service")
        .description("The scrape job of a service that exposes the kit's HTTP metrics.")
        .datasource(DATASOURCE)
        .query(f"label_values({SERVICE_METRIC}, job)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(False)
        .include_all(False),
    ]
    if instances:
        found.append(
            builder.QueryVariable("instance")
            .label("Instance")
            .description("Instances of the service.")
            .datasource(DATASOURCE)
            .query(f"label_values({SERVICE_METRIC}{{{JOB}}}, instance)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    if with_logs:
        found.append(builder.DatasourceVariable("logs").label("Logs").type("loki"))
    return found


# A version of the service Prometheus had not seen a minute before: a deploy
# (service_build_info, contract section 7). A restart of the same version is none.
DEPLOYS = (
    f"max by (version) (service_build_info{{{JOB}}})\n"
    f"unless max by (version) (service_build_info{{{JOB}}} offset 1m)"
)
# What Grafana's Prometheus annotations read beyond the query, which the SDK's
# AnnotationQuery does not name: the step matches the offset, one mark per deploy.
DEPLOY_OPTIONS = {"step": "1m", "titleFormat": "Deployed {{version}}", "tagKeys": "version"}


# A value's data link has a title, a URL and where it opens; the SDK builds it
# as a dashboard link, whose other keys mean nothing there.
DATA_LINK_KEYS = ("title", "url", "targetBlank")


def finish(board: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's JSON model with what the SDK cannot set."""
    for annotation in board["annotations"]["list"]:
        if annotation.get("expr") == DEPLOYS:
            annotation.update(DEPLOY_OPTIONS)
    for panel in board["panels"]:
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        if "links" in defaults:
            defaults["links"] = [
                {key: link[key] for key in DATA_LINK_KEYS} for link in defaults["links"]
            ]
    return board


def dashboard(
    uid: str,
    title: str,
    description: str,
    rows: list[list[Spec]],
    instances: bool = True,
    with_logs: bool = False,
) -> builder.Dashboard:
    """A dashboard with the kit's variables, deploy annotations and links, its
    panels laid out row by row; ``instances``: whether it has an instance choice,
    ``with_logs``: whether it reads logs (a ``logs`` data source choice)."""
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
        .variables(variables(instances, with_logs))
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
        .annotation(
            builder.AnnotationQuery()
            .name("Deploys")
            .datasource(DATASOURCE)
            .enable(True)
            .icon_color("#8F3BB8")
            .expr(DEPLOYS)
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
