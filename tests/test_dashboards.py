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

BOARDS = kit.load()
TARGETS = list(kit.targets(BOARDS))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
UID = re.compile(r"^[A-Za-z0-9_-]{8,40}$")
PANEL_TYPES = {"timeseries", "stat", "bargauge"}
RATE = "7m13s"  # stands for $__rate_interval: no query writes this window itself
COUNTERS = ("_total", "_count", "_sum", "_bucket")
CONTRACT = (KIT_ROOT / "docs" / "contract.md").read_text()


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
    assert {"datasource", "job", "instance"} <= variables.keys()
    datasource = variables["datasource"]
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    for variable in ("job", "instance"):
        query = variables[variable]
        assert query["type"] == "query"
        assert query["datasource"] == DATASOURCE
        assert query["multi"] is True and query["includeAll"] is True
        assert kit.parse_label_values(kit.variable_query(query))[1] == variable
    selector, _ = kit.parse_label_values(kit.variable_query(variables["instance"]))
    assert selector is not None
    (node,) = kit.selectors(selector)
    assert kit.matchers(node.node)["job"] == ("=~", "$job")  # multi-value: a regex


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


@pytest.mark.parametrize("target", TARGETS, ids=ids(TARGETS))
def test_range_functions_use_rate_interval(target: kit.Target) -> None:
    tree = kit.parse(kit.substitute(target.expr, rate=RATE))
    for node in kit.walk(tree):
        if isinstance(node.node, promql_parser.MatrixSelector):
            parent = kit.function_name(node.ancestors[-1])
            assert parent in kit.RANGE_FUNCTIONS, f"range selector outside rate(): {target.expr}"
            assert promql_parser.display_duration(node.node.range) == RATE, target.expr


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


def variable_problems(expr: str) -> list[str]:
    """Selectors of ``expr`` that do not follow the multi-value ``$job`` and ``$instance``.

    With several values or All selected, Grafana sends a regex (``a|b``, ``.*``):
    only ``=~`` matches it, ``=`` compares it literally and finds nothing.
    """
    problems = []
    for node in kit.selectors(expr.replace("$__rate_interval", "1m")):
        name = str(node.node.name)
        found = kit.matchers(node.node)
        if name == "slo:objective:ratio":
            continue  # the objectives are the same for every job
        wanted = ["job"] if name.startswith("slo:") else ["job", "instance"]  # SLOs: by job
        for label in wanted:
            if found.get(label) != ("=~", f"${label}"):
                problems.append(f"{name}: {label}{''.join(found.get(label, ('', '')))!r}")
    return problems


@pytest.mark.parametrize("target", TARGETS, ids=ids(TARGETS))
def test_selectors_follow_the_variables(target: kit.Target) -> None:
    assert not variable_problems(target.expr), target.expr


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [
        (
            'sum(http_server_active_requests{job="$job", instance=~"$instance"})',
            'sum(http_server_active_requests{job=~"$job", instance=~"$instance"})',
        ),
        (
            'sum(http_server_active_requests{job=~"$job", instance="$instance"})',
            'sum(http_server_active_requests{job=~"$job", instance=~"$instance"})',
        ),
        (
            'sum(http_server_active_requests{job=~"$job"})',
            'sum(http_server_active_requests{job=~"$job", instance=~"$instance"})',
        ),
        (
            'sum(slo:sli_error:ratio_rate5m{job="$job"})',
            'sum(slo:sli_error:ratio_rate5m{job=~"$job"})',
        ),
    ],
)
def test_a_selector_that_breaks_multi_value_variables_is_caught(broken: str, fixed: str) -> None:
    assert variable_problems(broken)
    assert not variable_problems(fixed)


def contract_metrics() -> set[str]:
    section = CONTRACT.split("## 7. Metrics", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_:]+)` \|", section, flags=re.MULTILINE))


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
    assert tree(project / "grafana") == tree(KIT_ROOT / "grafana")
    config = yaml.safe_load((project / "deploy/prometheus/prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "asset-check"
    assert job["static_configs"] == [{"targets": ["web:8000"]}]
    promtool = require("promtool")["promtool"]
    result = subprocess.run(
        [promtool, "check", "config", str(project / "deploy/prometheus/prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
