"""The dashboards, without a Grafana server: Grafana's dashboard-linter rules
as tests, the JSON model's invariants, the LogQL of the logs panel and of the
links to the logs, and the generated files kept current.

The same PromQL queries run against a real Prometheus in
tests/test_observability.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from kit import dashboards as kit
from kit import logql
from kit.render import FRAMEWORKS, KIT_ROOT, render
from kit.system import require
from monitoring.build import generated_files
from monitoring.catalogue import metrics
from monitoring.project import rule_files
from monitoring.slo import BURN_ALERTS
from monitoring.slo import seconds as window_seconds

BOARDS = kit.load()
TARGETS = list(kit.targets(BOARDS))
LOG_TARGETS = list(kit.log_targets(BOARDS))
LINKS = list(kit.data_links(BOARDS))
ANNOTATIONS = list(kit.annotation_queries(BOARDS))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
LOGS = {"type": "loki", "uid": "${logs}"}
UID = re.compile(r"^[A-Za-z0-9_-]{8,40}$")
PANEL_TYPES = {"timeseries", "stat", "bargauge", "heatmap"}
RATE = "7m13s"  # stands for $__rate_interval: no query writes this window itself
COUNTERS = ("_total", "_count", "_sum", "_bucket")
CONTRACT = (KIT_ROOT / "docs" / "contract.md").read_text()
CONTEXT = {"project_slug": "asset-check"}


def ids(items: list[Any]) -> list[str]:
    return [item.where for item in items]


def test_the_kit_has_the_four_boards() -> None:
    titles = {board["title"] for board in BOARDS.values()}
    assert titles == {"Service overview", "Database pool", "Runtime", "Service level objectives"}


def test_generated_files_are_current() -> None:
    stale = [
        relative
        for relative, text in generated_files().items()
        if not (KIT_ROOT / relative).is_file()
        or (KIT_ROOT / relative).read_text(encoding="utf-8") != text
    ]
    assert not stale, f"stale generated files {stale}: run `uv run python -m monitoring`"
    on_disk = {p.name for p in kit.DASHBOARDS.glob("*.json")}
    assert on_disk == {Path(r).name for r in generated_files() if r.endswith(".json")}


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_json_model(name: str) -> None:
    board = BOARDS[name]
    assert board["schemaVersion"] == 41
    assert UID.match(board["uid"]), board["uid"]
    assert board["title"] and board["description"]
    text = (kit.DASHBOARDS / name).read_text()
    # File provisioning leaves __inputs placeholders literal (grafana#10786).
    assert "__inputs" not in board and "${DS_" not in text
    assert isinstance(board["annotations"]["list"], list)
    assert isinstance(board["links"], list) and isinstance(board["tags"], list)


def test_uids_are_unique() -> None:
    uids = [board["uid"] for board in BOARDS.values()]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_variables(name: str) -> None:
    variables = kit.variables(BOARDS[name])
    assert {"datasource", "job"} <= variables.keys() <= {"datasource", "job", "instance", "logs"}
    datasource = variables["datasource"]
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    if "logs" in variables:
        assert (variables["logs"]["type"], variables["logs"]["query"]) == ("datasource", "loki")
    # One service at a time: a single choice, so no stat adds two services up.
    job = variables["job"]
    assert job["type"] == "query" and job["datasource"] == DATASOURCE
    assert job["multi"] is False and job["includeAll"] is False
    assert kit.parse_label_values(kit.variable_query(job))[1] == "job"
    if "instance" in variables:
        instance = variables["instance"]
        assert instance["type"] == "query" and instance["datasource"] == DATASOURCE
        assert instance["multi"] is True and instance["includeAll"] is True
        selector, label = kit.parse_label_values(kit.variable_query(instance))
        assert label == "instance" and selector is not None
        (node,) = kit.selectors(selector)
        assert kit.matchers(node.node)["job"] == ("=", "$job")


def uses(board: dict[str, Any], variable: str) -> bool:
    texts = [t.expr for t in kit.targets({"": board})] + [
        t.expr for t in kit.log_targets({"": board})
    ]
    texts += [p["datasource"]["uid"] for p in kit.panels(board)] + [
        str(v.get("query", "")) for v in kit.variables(board).values() if v["name"] != variable
    ]
    texts += [a.get("expr", "") for a in board["annotations"]["list"]]
    return any(re.search(rf"\${{?{variable}\b", text) for text in texts)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_no_control_changes_nothing(name: str) -> None:
    board = BOARDS[name]
    for variable in kit.variables(board):
        assert uses(board, variable), f"${variable} changes nothing on {name}"


def test_a_control_that_changes_nothing_is_caught() -> None:
    board = BOARDS["slo.json"]
    unused = {"name": "instance", "type": "query", "query": "label_values(up, instance)"}
    broken = {**board, "templating": {"list": [*board["templating"]["list"], unused]}}
    assert not uses(broken, "instance")
    assert uses(BOARDS["service-overview.json"], "instance")
    logs = {"name": "logs", "type": "datasource", "query": "loki"}
    broken = {**board, "templating": {"list": [*board["templating"]["list"], logs]}}
    assert not uses(broken, "logs")
    assert uses(BOARDS["service-overview.json"], "logs")


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panels_and_layout(name: str) -> None:
    panels = kit.panels(BOARDS[name])
    assert panels
    panel_ids = [panel["id"] for panel in BOARDS[name]["panels"]]
    assert len(panel_ids) == len(set(panel_ids))
    taken: dict[tuple[int, int], str] = {}
    for panel in panels:
        where = f"{name} / {panel.get('title')}"
        assert panel["title"].strip(), where
        assert panel.get("description", "").strip(), where
        assert panel["targets"], where
        if panel["type"] == "logs":
            assert panel["datasource"] == LOGS, where
            continue
        assert panel["type"] in PANEL_TYPES, where  # no legacy graph or singlestat
        assert panel["fieldConfig"]["defaults"].get("unit"), where
        assert panel["datasource"] == DATASOURCE, where
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{where} overlaps {taken[(x, y)]}"
                taken[(x, y)] = where


@pytest.mark.parametrize("target", TARGETS, ids=ids(TARGETS))
def test_target_uses_the_datasource_variable(target: kit.Target) -> None:
    assert target.target["datasource"] == DATASOURCE
    assert target.target["refId"]


RANGE = "3h7m"  # stands for $__range


@pytest.mark.parametrize("target", TARGETS, ids=ids(TARGETS))
def test_range_functions_use_rate_interval(target: kit.Target) -> None:
    # Graphs rate over $__rate_interval; a ranking (an instant query) over the
    # dashboard's whole range, $__range, not over its last minute.
    window = RANGE if target.target.get("instant") else RATE
    tree = kit.parse(kit.substitute(target.expr, rate=RATE, range_=RANGE))
    for node in kit.walk(tree):
        if isinstance(node.node, promql_parser.MatrixSelector):
            parent = kit.function_name(node.ancestors[-1])
            assert parent in kit.RANGE_FUNCTIONS, f"range selector outside rate(): {target.expr}"
            assert promql_parser.display_duration(node.node.range) == window, target.expr


def test_rankings_cover_the_selected_range() -> None:
    rankings = [t for t in TARGETS if t.panel["type"] == "bargauge"]
    assert {t.panel["title"] for t in rankings} >= {"Top routes", "Slowest routes (p99)"}
    for target in rankings:
        assert target.target.get("instant") is True, target.where
        assert "$__range" in target.expr and "$__rate_interval" not in target.expr, target.where


@pytest.mark.parametrize("target", TARGETS, ids=ids(TARGETS))
def test_counters_are_rated_and_everything_aggregated(target: kit.Target) -> None:
    for node in kit.selectors(kit.substitute(target.expr)):
        name = str(node.node.name)
        if name.endswith(COUNTERS):
            assert len(node.ancestors) >= 2, f"{name} is not inside rate(): {target.expr}"
            matrix, call = node.ancestors[-1], node.ancestors[-2]
            assert isinstance(matrix, promql_parser.MatrixSelector), target.expr
            assert kit.function_name(call) in kit.COUNTER_FUNCTIONS, target.expr
        # Extra labels (pid, instance) must never split a panel's series.
        assert any(kit.is_aggregation(a) for a in node.ancestors), f"{name} not aggregated"


WANTED = {"job": ("=", "$job"), "instance": ("=~", "$instance")}


def variable_problems(expr: str) -> list[str]:
    """Selectors of ``expr`` that do not follow ``$job`` (one service: ``=``) and
    ``$instance`` (several, or All: Grafana sends a regex, ``a|b`` or ``.*``, which
    only ``=~`` matches; ``=`` would compare it literally and find nothing)."""
    problems = []
    for node in kit.selectors(expr.replace("$__rate_interval", "1m").replace("$__range", "1h")):
        name = str(node.node.name)
        found = kit.matchers(node.node)
        # The SLO series are the job's (its objectives too), never an instance's.
        wanted = ["job"] if name.startswith("slo:") else ["job", "instance"]
        for label in wanted:
            if found.get(label) != WANTED[label]:
                problems.append(f"{name}: {label}{''.join(found.get(label, ('', '')))!r}")
    return problems


@pytest.mark.parametrize("target", TARGETS, ids=ids(TARGETS))
def test_selectors_follow_the_variables(target: kit.Target) -> None:
    assert not variable_problems(target.expr), target.expr


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [
        (
            'sum(http_server_active_requests{job=~"$job", instance=~"$instance"})',
            'sum(http_server_active_requests{job="$job", instance=~"$instance"})',
        ),
        (
            'sum(http_server_active_requests{job="$job", instance="$instance"})',
            'sum(http_server_active_requests{job="$job", instance=~"$instance"})',
        ),
        (
            'sum(http_server_active_requests{job="$job"})',
            'sum(http_server_active_requests{job="$job", instance=~"$instance"})',
        ),
        (
            "max by (slo) (slo:objective:ratio)",
            'max by (slo) (slo:objective:ratio{job="$job"})',
        ),
    ],
)
def test_a_selector_that_breaks_the_variables_is_caught(broken: str, fixed: str) -> None:
    assert variable_problems(broken)
    assert not variable_problems(fixed)


def contract_metrics() -> set[str]:
    section = CONTRACT.split("## 7. Metrics", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_:]+)` \|", section, flags=re.MULTILINE))


def test_every_board_marks_deploys() -> None:
    # A version of the service seen for the first time (service_build_info).
    assert {a.board for a in ANNOTATIONS} == set(BOARDS)
    for annotation in ANNOTATIONS:
        assert annotation.annotation["datasource"] == DATASOURCE, annotation.where
        assert annotation.annotation["titleFormat"] == "Deployed {{version}}"
        (now, before) = kit.selectors(annotation.expr)
        for node in (now, before):
            assert str(node.node.name) == "service_build_info"
            assert kit.matchers(node.node) == {"job": ("=", "$job")}, annotation.where


PER_PROCESS = ("process_resident_memory_bytes", "process_open_fds", "process_max_fds")


def summed(expr: str, names: tuple[str, ...]) -> list[str]:
    """Selectors of ``names`` that a ``sum`` adds up."""
    return [
        str(node.node.name)
        for node in kit.selectors(kit.substitute(expr))
        if str(node.node.name) in names
        and any(kit.is_aggregation(a) and "sum" in str(a.op).lower() for a in node.ancestors)
    ]


def test_per_process_figures_are_never_added_up() -> None:
    # Forked workers share pages each one's resident memory counts again, and
    # each process has its own descriptor limit: no sum over processes.
    read = [t for t in TARGETS if any(name in t.expr for name in PER_PROCESS)]
    assert {t.panel["title"] for t in read} >= {"Resident memory", "File descriptors used"}
    for target in read:
        assert not summed(target.expr, PER_PROCESS), target.where
    assert summed("sum(process_resident_memory_bytes{job='x'})", PER_PROCESS)  # can fail


def panel(board: str, title: str) -> dict[str, Any]:
    (found,) = [p for p in kit.panels(BOARDS[board]) if p["title"] == title]
    return found


def test_one_workers_full_pool_shows() -> None:
    # The pool gauges are each worker's: saturation is the fullest one's, a max.
    for title in ("Fullest pool", "Fullest pool by instance"):
        (target,) = panel("database.json", title)["targets"]
        tree = kit.parse(kit.substitute(target["expr"]))
        assert isinstance(tree, promql_parser.AggregateExpr) and "max" in str(tree.op).lower()


def test_burn_rate_panels_draw_the_alerts_thresholds() -> None:
    rates = {rate for alert in BURN_ALERTS for _, _, rate in alert.conditions}
    for title in ("Availability burn rate", "Latency burn rate"):
        defaults = panel("slo.json", title)["fieldConfig"]["defaults"]
        steps = {step["value"] for step in defaults["thresholds"]["steps"]} - {None}
        assert steps == rates, title
        assert defaults["custom"]["thresholdsStyle"]["mode"] in ("line", "dashed")


def test_the_error_budget_burns_down_over_the_objectives_window() -> None:
    burn_down = panel("slo.json", "Error budget burn-down (30d)")
    assert burn_down["timeFrom"] == "30d"
    assert "slo:error_budget_remaining:ratio" in burn_down["targets"][0]["expr"]


def test_new_panels_read_what_they_show() -> None:
    (up, total) = panel("runtime.json", "Targets up")["targets"]
    assert (up["expr"], total["expr"]) == (
        'sum(up{job="$job", instance=~"$instance"})',
        'count(up{job="$job", instance=~"$instance"})',
    )
    saturation = panel("service-overview.json", "Saturation")["targets"][0]["expr"]
    assert "http_server_active_requests_limit" in saturation
    (heat,) = panel("service-overview.json", "Latency distribution")["targets"]
    assert heat["format"] == "heatmap" and heat["legendFormat"] == "{{le}}"
    apdex = panel("service-overview.json", "Apdex")["targets"][0]["expr"]
    assert 'le="0.25"' in apdex and 'le="1.0"' in apdex and '!~"5.."' in apdex


@pytest.mark.parametrize("target", TARGETS, ids=ids(TARGETS))
def test_only_contract_metrics_are_read(target: kit.Target) -> None:
    recorded = set(
        re.findall(r"record: (\S+)", (KIT_ROOT / "grafana/rules/recording.yml").read_text())
    )
    histograms = {m for m in contract_metrics() if f"`{m}` | histogram" in CONTRACT}
    allowed = (
        contract_metrics()
        | {f"{h}_{suffix}" for h in histograms for suffix in ("bucket", "count", "sum")}
        | recorded
        | {"up"}
    )
    runtime = ("process_", "python_gc_")  # contract, section 7: standard collectors
    for name in metrics(target.expr):
        assert name in allowed or name.startswith(runtime), f"{name} is not in the contract"


def test_latency_panels_show_exemplars() -> None:
    latency = [
        t
        for t in TARGETS
        if "http_server_request_duration_seconds_bucket" in t.expr
        and t.panel["type"] == "timeseries"
    ]
    assert len(latency) >= 6
    for target in latency:
        assert target.target.get("exemplar") is True, target.where


def test_every_query_is_valid_promql_for_promtool(tmp_path: Path) -> None:
    promtool = require("promtool")["promtool"]
    rules = [
        {"record": f"lint:query:{number}", "expr": kit.substitute(target.expr)}
        for number, target in enumerate(TARGETS)
    ]
    rules += [
        {"record": "lint:annotation", "expr": kit.substitute(annotation.expr)}
        for annotation in ANNOTATIONS
    ]
    for board in BOARDS.values():
        for variable in kit.variables(board).values():
            if variable["type"] == "query":
                selector, _ = kit.parse_label_values(kit.variable_query(variable))
                if selector:
                    rules.append({"record": "lint:variable", "expr": kit.substitute(selector)})
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "lint", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- logs: the logs panel and the links to the logs ------------------------------


def contract_log_labels() -> set[str]:
    """The labels of the service's log streams (docs/contract.md, section 11)."""
    section = CONTRACT.split("## 11. ", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"two labels only: `(\w+)`.*? and `(\w+)`", section, flags=re.DOTALL)
    assert found, "section 11 names no log labels"
    return set(found.groups())


def contract_log_fields() -> set[str]:
    """The keys of the service's JSON lines (docs/contract.md, section 5)."""
    section = CONTRACT.split("## 5. Logs", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([a-z_]+)`", section))


# Never a label: one value per request, so one stream per request.
IDS = {"request_id", "trace_id", "span_id"}


def log_query_problems(expr: str) -> list[str]:
    """What makes ``expr`` no query of the contract's log streams: LogQL that
    does not parse, a label the streams do not have (an id among them), a
    service other than the selected job, a field no line of the service has."""
    try:
        query = logql.parse(expr)
    except logql.LogQLError as error:
        return [str(error)]
    labels = query.stream_labels
    problems = [f"label {label}" for label in labels.keys() - contract_log_labels()]
    problems += [f"id {label} as a label" for label in labels.keys() & IDS]
    if labels.get("service_name") != ("=", "$job"):
        problems.append(f"service_name {labels.get('service_name')} is not the selected job")
    if query.label_filters and "json" not in query.parsers:
        problems.append("a filter on fields the line's JSON was not parsed into")
    known = contract_log_fields() | contract_log_labels()
    problems += [f"field {m.label}" for m in query.label_filters if m.label not in known]
    return problems


@pytest.mark.parametrize("target", LOG_TARGETS, ids=ids(LOG_TARGETS))
def test_log_queries_read_the_contracts_streams(target: kit.Target) -> None:
    assert target.target["datasource"] == LOGS
    assert not log_query_problems(target.expr), target.expr


@pytest.mark.parametrize(
    "broken",
    [
        '{service_name="$job", request_id="abc"}',  # an id as a label
        '{job="$job"}',  # a label the streams do not have
        '{service_name=~"$job"}',  # not the one selected job
        '{service_name="$job"} | http_status >= 500',  # fields not parsed from the JSON
        '{service_name="$job"} | json | http_response_status_code >= 500',  # the metric's label
        '{service_name="$job"} | json | http_status >= "500"',  # not LogQL
        '{service_name="$job", level=~"error|critical"',  # not LogQL
    ],
)
def test_a_log_query_outside_the_contract_is_caught(broken: str) -> None:
    assert log_query_problems(broken)


def test_the_overview_shows_the_jobs_error_logs() -> None:
    (target,) = [t for t in LOG_TARGETS if t.panel["title"] == "Error logs"]
    assert target.board == "service-overview.json" and target.panel["type"] == "logs"
    labels = logql.parse(target.expr).stream_labels
    assert labels == {"service_name": ("=", "$job"), "level": ("=~", "error|critical")}
    assert target.panel["options"]["sortOrder"] == "Descending"


# The rate, error and duration panels: each links to the logs behind its values.
RED_PANELS = {
    "Request rate",
    "Error ratio (5xx)",
    "Latency p99",
    "Request rate by route",
    "Error ratio (5xx) by route",
    "Latency percentiles",
    "Latency by route",
    "5xx by cause",
}


def test_red_panels_link_to_the_logs_of_the_job_and_window() -> None:
    linked = {link.panel["title"] for link in LINKS if link.board == "service-overview.json"}
    assert linked == RED_PANELS
    for panel in kit.panels(BOARDS["service-overview.json"]):
        if "5xx" in panel["title"] and panel["title"] in RED_PANELS:
            titles = [link["title"] for link in panel["fieldConfig"]["defaults"]["links"]]
            assert "Logs of failed requests" in titles, panel["title"]


@pytest.mark.parametrize("link", LINKS, ids=ids(LINKS))
def test_each_link_opens_the_logs_in_explore(link: kit.DataLink) -> None:
    assert set(link.link) == {"title", "url", "targetBlank"}, link.where
    pane = link.explore_pane()
    # The board's own choice of Loki and its time range, filled in by Grafana.
    assert pane["datasource"] == "$logs"
    assert pane["range"] == {"from": "$__from", "to": "$__to"}
    (query,) = pane["queries"]
    assert query["datasource"] == {"type": "loki", "uid": "$logs"}
    assert not log_query_problems(query["expr"]), query["expr"]
    # Only the JSON is encoded: a variable written ${name} would not be filled in.
    assert "%24" not in link.link["url"] and "$%7B" not in link.link["url"]


def test_a_link_that_is_not_explore_is_caught() -> None:
    (link, *_) = LINKS
    broken = kit.DataLink(link.board, link.panel, {**link.link, "url": "/d/kit-service-overview"})
    with pytest.raises(AssertionError):
        broken.explore_pane()


def test_legends_keep_grafanas_templates() -> None:
    legends = [t.target.get("legendFormat", "") for t in TARGETS]
    assert any("{{http_route}}" in legend for legend in legends)
    for legend in legends:
        assert "cookiecutter" not in legend and "{%" not in legend


# --- provisioning and the generated projects' copies ---------------------------------


def test_datasources_provisioning() -> None:
    config = yaml.safe_load(
        (KIT_ROOT / "grafana/provisioning/datasources/datasources.yaml").read_text()
    )
    sources = {source["uid"]: source for source in config["datasources"]}
    assert set(sources) == {"prometheus", "tempo", "loki"}
    prometheus, tempo, loki = sources["prometheus"], sources["tempo"], sources["loki"]
    assert (prometheus["type"], prometheus["url"]) == ("prometheus", "http://prometheus:9090")
    assert prometheus["isDefault"] is True
    assert prometheus["jsonData"]["exemplarTraceIdDestinations"] == [
        {"name": "trace_id", "datasourceUid": "tempo"}
    ]
    assert (tempo["type"], tempo["url"]) == ("tempo", "http://tempo:3200")
    assert (loki["type"], loki["url"]) == ("loki", "http://loki:3100")


def test_a_span_opens_the_logs_of_its_trace_around_it() -> None:
    tempo = provisioned()["tempo"]["jsonData"]["tracesToLogsV2"]
    assert tempo["datasourceUid"] == "loki"
    assert tempo["filterByTraceID"] is True and not tempo.get("customQuery")
    # The span's service is the streams' service_name label (contract, section 11).
    assert tempo["tags"] == [{"key": "service.name", "value": "service_name"}]
    start, end = (
        window_seconds(tempo[k].lstrip("-")) for k in ("spanStartTimeShift", "spanEndTimeShift")
    )
    assert tempo["spanStartTimeShift"].startswith("-") and not tempo["spanEndTimeShift"].startswith(
        "-"
    )
    assert 0 < start <= 300 and 0 < end <= 300, "a window around the span, not the whole range"


# A line as the services write it (orjson, no spaces) and as json.dumps would.
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
LINE = {
    "timestamp": "2025-07-01T12:00:00Z",
    "level": "error",
    "trace_id": TRACE_ID,
    "request_id": "r1",
}


def test_a_log_lines_trace_id_opens_its_trace() -> None:
    (field,) = provisioned()["loki"]["jsonData"]["derivedFields"]
    assert field["datasourceUid"] == "tempo" and field["matcherType"] == "regex"
    # Provisioning reads $$ as a literal $ (a single $ names an environment variable).
    assert field["url"] == "$${__value.raw}"
    for line in (json.dumps(LINE, separators=(",", ":")), json.dumps(LINE)):
        match = re.search(field["matcherRegex"], line)
        assert match and match.group(1) == TRACE_ID, line
    assert not re.search(field["matcherRegex"], json.dumps({**LINE, "trace_id": None}))


def provisioned() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load(
        (KIT_ROOT / "grafana/provisioning/datasources/datasources.yaml").read_text()
    )
    return {source["uid"]: source for source in config["datasources"]}


def test_dashboard_provider_reads_the_mounted_dashboards() -> None:
    config = yaml.safe_load(
        (KIT_ROOT / "grafana/provisioning/dashboards/dashboards.yaml").read_text()
    )
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.mark.render
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_projects_carry_the_kits_assets_unchanged(framework: str, tmp_path: Path) -> None:
    project = render(framework, tmp_path, project_name="Asset Check")
    kit_assets = tree(KIT_ROOT / "grafana")
    assets = tree(project / "grafana")
    rules = {f"rules/{path}": text.encode() for path, text in rule_files(CONTEXT).items()}
    # The dashboards and provisioning as the kit has them; the rules rendered for
    # the project's job (its slug), as monitoring/ renders them.
    assert {k: v for k, v in assets.items() if not k.startswith("rules/")} == {
        k: v for k, v in kit_assets.items() if not k.startswith("rules/")
    }
    assert {k: v for k, v in assets.items() if k.startswith("rules/")} == rules
    assert 'job="asset-check"' in assets["rules/alerts.yml"].decode()
    config = yaml.safe_load((project / "deploy/prometheus/prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "asset-check" == CONTEXT["project_slug"]
    assert job["static_configs"] == [{"targets": ["web:8000"]}]
    promtool = require("promtool")["promtool"]
    result = subprocess.run(
        [promtool, "check", "config", str(project / "deploy/prometheus/prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
