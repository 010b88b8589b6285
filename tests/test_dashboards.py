"""The dashboards, without a Grafana server: Grafana's dashboard-linter rules
as tests, the JSON model's invariants, and the generated files kept current.

The same queries run against a real Prometheus in tests/test_observability.py.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from kit import dashboards as kit
from kit.render import FRAMEWORKS, KIT_ROOT, render
from kit.system import require
from monitoring.build import generated_files
from monitoring.catalogue import metrics
from monitoring.project import rule_files
from monitoring.slo import BURN_ALERTS

BOARDS = kit.load()
TARGETS = list(kit.targets(BOARDS))
ANNOTATIONS = list(kit.annotation_queries(BOARDS))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
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
    assert {"datasource", "job"} <= variables.keys() <= {"datasource", "job", "instance"}
    datasource = variables["datasource"]
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
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
        str(v.get("query", "")) for v in kit.variables(board).values() if v["name"] != variable
    ]
    texts += [a.get("expr", "") for a in board["annotations"]["list"]]
    return any(re.search(rf"\${{?{variable}\b", text) for text in texts)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_no_control_changes_nothing(name: str) -> None:
    board = BOARDS[name]
    for variable in kit.variables(board):
        if variable != "datasource":  # every panel's and query's data source
            assert uses(board, variable), f"${variable} changes nothing on {name}"


def test_a_control_that_changes_nothing_is_caught() -> None:
    board = BOARDS["slo.json"]
    unused = {"name": "instance", "type": "query", "query": "label_values(up, instance)"}
    broken = {**board, "templating": {"list": [*board["templating"]["list"], unused]}}
    assert not uses(broken, "instance")
    assert uses(BOARDS["service-overview.json"], "instance")


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panels_and_layout(name: str) -> None:
    panels = kit.panels(BOARDS[name])
    assert panels
    panel_ids = [panel["id"] for panel in BOARDS[name]["panels"]]
    assert len(panel_ids) == len(set(panel_ids))
    taken: dict[tuple[int, int], str] = {}
    for panel in panels:
        where = f"{name} / {panel.get('title')}"
        assert panel["type"] in PANEL_TYPES, where  # no legacy graph or singlestat
        assert panel["title"].strip(), where
        assert panel.get("description", "").strip(), where
        assert panel["fieldConfig"]["defaults"].get("unit"), where
        assert panel["datasource"] == DATASOURCE, where
        assert panel["targets"], where
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
    assert set(sources) == {"prometheus", "tempo"}
    prometheus, tempo = sources["prometheus"], sources["tempo"]
    assert (prometheus["type"], prometheus["url"]) == ("prometheus", "http://prometheus:9090")
    assert prometheus["isDefault"] is True
    assert prometheus["jsonData"]["exemplarTraceIdDestinations"] == [
        {"name": "trace_id", "datasourceUid": "tempo"}
    ]
    assert (tempo["type"], tempo["url"]) == ("tempo", "http://tempo:3200")


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
