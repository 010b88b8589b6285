"""The Prometheus rules: rendered for each project from monitoring/, valid for
promtool, scoped to the project's own job, and unit-tested so that every alert
both fires on its condition and stays quiet without it, for the default
objectives and others, alone and beside another service's rules."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.utils import floatToGoString

from hooks.kit_hooks import problems
from kit import dashboards as kit
from kit.render import KIT_ROOT
from kit.system import require
from monitoring import rule_tests
from monitoring.project import EXAMPLE, rule_files, service
from monitoring.rules import Service, alerts_file
from monitoring.slo import (
    DURATION_BUCKETS,
    LONG_INTERVAL,
    LONG_WINDOWS,
    SLO_WINDOW,
    Objectives,
    objectives,
    seconds,
)
from tests.objectives import OBJECTIVES

RULES = KIT_ROOT / "grafana" / "rules"
CONTRACT = KIT_ROOT / "docs" / "contract.md"
PAGES = {
    "SLOAvailabilityFastBurn",
    "SLOLatencyFastBurn",
    "ServiceDown",
    "ServiceTargetsAbsent",
    "ServiceTrafficStopped",
}
TICKETS = {
    "SLOAvailabilitySlowBurn",
    "SLOLatencySlowBurn",
    "SLOErrorBudgetExhausted",
    "ScrapeTargetDown",
    "ServiceNotReady",
    "ServiceSheddingLoad",
    "ServiceCrashLooping",
    "ServiceFileDescriptorsNearLimit",
    "DatabasePoolExhausted",
    "DatabasePoolTimeouts",
}


def promtool(*args: str, cwd: Path = KIT_ROOT) -> subprocess.CompletedProcess[str]:
    binary = require("promtool")["promtool"]
    return subprocess.run([binary, *args], capture_output=True, text=True, cwd=cwd)


def rules_of(root: Path) -> list[dict[str, Any]]:
    return [
        rule
        for path in sorted(root.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def alert_names(root: Path = RULES) -> set[str]:
    return {rule["alert"] for rule in rules_of(root) if "alert" in rule}


def write(root: Path, context: dict[str, Any]) -> Path:
    for relative, text in rule_files(context).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def test_the_kits_copy_is_the_default_answers_rendering() -> None:
    # Kept current by test_dashboards.py::test_generated_files_are_current; here,
    # what it is: the rules of the default project, with the default objectives.
    assert service(EXAMPLE).objectives == Objectives(0.999, 0.5, 0.99)
    assert {path.relative_to(RULES).as_posix() for path in RULES.rglob("*.yml")} == set(
        rule_files(EXAMPLE)
    )


def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", *map(str, sorted(RULES.glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    tests = sorted(RULES.glob("tests/*.yml"))
    assert tests
    result = promtool("test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_rules_and_their_tests_hold_for_other_objectives(name: str, tmp_path: Path) -> None:
    # The default project's rules with these objectives: the render matrix's, byte for byte.
    root = write(tmp_path, {**EXAMPLE, **OBJECTIVES[name]})
    result = promtool("check", "rules", *map(str, sorted(root.glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr
    result = promtool("test", "rules", *map(str, sorted(root.glob("tests/*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr
    text = (root / "recording.yml").read_text()
    assert f"vector({float(OBJECTIVES[name]['slo_availability']) / 100:g})" in text


def test_every_alert_is_tested_firing_and_quiet() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULES.glob("tests/*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = alert_names()
    assert names == PAGES | TICKETS
    assert names - fired == set(), "alerts never seen firing"
    assert names - quiet == set(), "alerts never seen staying quiet"


def test_pages_are_critical_and_the_rest_open_tickets() -> None:
    severity = {
        rule["alert"]: rule["labels"]["severity"] for rule in rules_of(RULES) if "alert" in rule
    }
    assert {name for name, level in severity.items() if level == "critical"} == PAGES
    assert {name for name, level in severity.items() if level == "warning"} == TICKETS


def selectors_without_the_job(expr: str, job: str) -> list[str]:
    """Selectors of ``expr`` that would read another service's series too."""
    return [
        str(node.node)
        for node in kit.selectors(expr)
        if kit.matchers(node.node).get("job") != ("=", job)
    ]


def test_every_selector_matches_the_services_own_job() -> None:
    job = EXAMPLE["project_slug"]
    for rule in rules_of(RULES):
        assert not selectors_without_the_job(rule["expr"], job), rule
        name = rule.get("record") or rule["alert"]
        if "record" in rule:
            assert rule["labels"]["job"] == job, name  # even a constant (an objective) is the job's


@pytest.mark.parametrize(
    "broken",
    [
        "up == 0",
        'sum(rate(http_server_request_duration_seconds_count{job=~"example-service"}[5m]))',
        'sum(slo:sli_errors:rate5m{job="example-service"}) / sum(slo:sli_requests:rate5m)',
    ],
)
def test_a_selector_of_every_job_is_caught(broken: str) -> None:
    assert selectors_without_the_job(broken, "example-service")


def test_long_windows_are_recorded_less_often() -> None:
    groups = yaml.safe_load((RULES / "recording.yml").read_text())["groups"]
    intervals = {group["name"]: group.get("interval") for group in groups}
    slow = [group for group in groups if group.get("interval")]
    assert len(slow) == 1 and len(intervals) == 2, intervals
    # Well within the 5-minute lookback, so no recorded series ever goes stale.
    assert 60 <= seconds(LONG_INTERVAL) <= 150
    assert slow[0]["interval"] == LONG_INTERVAL
    recorded = {rule["record"] for rule in slow[0]["rules"]}
    long = {f"slo:sli_error:ratio_rate{w}" for w in (*LONG_WINDOWS, SLO_WINDOW)}
    assert long | {"slo:error_budget_remaining:ratio"} <= recorded
    for group in groups:
        if group is not slow[0]:
            assert not {rule["record"] for rule in group["rules"]} & long


def test_every_alert_says_its_value_and_links_its_dashboard() -> None:
    uids = {board["uid"] for board in kit.load().values()}
    for rule in rules_of(RULES):
        if "alert" not in rule:
            continue
        annotations = rule["annotations"]
        # The runbook link: tests/test_runbooks.py follows it.
        assert set(annotations) == {"summary", "description", "dashboard", "runbook_url"}, rule[
            "alert"
        ]
        assert "$value" in annotations["description"], rule["alert"]
        link = re.fullmatch(
            r"http://localhost:3000/d/([\w-]+)\?var-job=example-service"
            r"(&var-instance=\{\{ \$labels\.instance \}\})?",
            annotations["dashboard"],
        )
        assert link and link[1] in uids, annotations["dashboard"]
        assert annotations["description"].endswith(f"Dashboard: {annotations['dashboard']}")
        if link[2]:  # an instance's dashboard only for an alert by instance
            assert "instance" in rule["expr"] or "up{" in rule["expr"], rule["alert"]


def test_the_objectives_come_from_the_context_with_defaults() -> None:
    assert objectives({}) == Objectives(0.999, 0.5, 0.99)
    assert objectives(OBJECTIVES["limits"]) == Objectives(0.9306, 10, 0.999999)
    custom = service({"project_slug": "shop", "grafana_url": "https://grafana.example.com/"})
    assert custom.link("x") == "https://grafana.example.com/d/x?var-job=shop"


@pytest.mark.parametrize(
    ("answers", "wrong"),
    [
        ({"slo_availability": "100"}, "slo_availability"),
        ({"slo_availability": "0.999"}, "slo_availability"),
        ({"slo_availability": "ninety"}, "slo_availability"),
        ({"slo_latency_target": 90}, "slo_latency_target"),
        ({"slo_latency_target": True}, "slo_latency_target"),
        ({"slo_latency_seconds": "0.3"}, "slo_latency_seconds"),
        ({"slo_latency_seconds": "-1"}, "slo_latency_seconds"),
    ],
)
def test_objectives_that_cannot_work_stop_generation(answers: dict[str, Any], wrong: str) -> None:
    context = {
        "project_name": "Shop",
        "project_slug": "shop",
        "package_name": "shop",
        "version": "0.1.0",
        **answers,
    }
    (problem,) = problems(context)
    assert problem.startswith(wrong), problem
    with pytest.raises(ValueError, match=wrong):
        objectives(context)
    # Without them, the kit's defaults.
    assert not problems({key: value for key, value in context.items() if key not in answers})


def test_the_hook_renders_rules_without_the_grafana_sdk() -> None:
    # Cookiecutter's own interpreter has PyYAML, never the kit's SDK.
    code = (
        "import sys; sys.modules['grafana_foundation_sdk'] = None; "
        "from monitoring.project import rule_files; "
        "assert rule_files({'project_slug': 'x'})"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=KIT_ROOT
    )
    assert result.returncode == 0, result.stderr


def test_le_values_are_written_as_prometheus_3_stores_them(tmp_path: Path) -> None:
    # Prometheus 3 (compose.yaml's) normalises `le` on ingestion to the float form
    # the services already expose ("1.0", never "1"); Prometheus 2 stores it as
    # exposed. A matcher on a bucket bound in that form matches under both.
    (bounds,) = re.findall(r"histogram, buckets `([^`]+)`", CONTRACT.read_text())
    assert [float(bound) for bound in bounds.split()] == list(DURATION_BUCKETS)
    exposed: set[str] = {
        floatToGoString(float(bound))  # type: ignore[no-untyped-call]  # untyped upstream
        for bound in bounds.split()
    }
    for name, answers in OBJECTIVES.items():
        write(tmp_path / name, {"project_slug": name, **answers})
    files = [*RULES.rglob("*.yml"), *tmp_path.rglob("*.yml")]
    files += (KIT_ROOT / "grafana" / "dashboards").glob("*.json")
    matched = {
        value
        for path in files
        for value in re.findall(r'\ble\s*=~?\s*\\?"([^"\\]+)', path.read_text())
    }
    assert {"0.5", "0.25", "10.0"} <= matched
    assert matched <= exposed, f"le values not in their exposed form: {matched - exposed}"


# --- two services in one Prometheus ---------------------------------------------------


def side_by_side(api: Service, web: Service) -> dict[str, Any]:
    """A promtool test of two services' rules loaded together, and a third
    service that has no rules here: each judged by its own objectives, none
    alerting on another's series, no series recorded twice."""
    steady: list[dict[str, str]] = []
    for job in (api.job, web.job, "unruled"):
        traffic = rule_tests.Traffic(job, "0.5")
        failed = 4.0 if job != "unruled" else 500.0  # 0.4% for both, half for the third
        steady += traffic.requests("ok", f"0+{1000 - failed:g}x420", f"0+{1000 - failed:g}x420")
        steady += traffic.requests("database", f"0+{failed:g}x420", f"0+{failed:g}x420")
    targets = [
        {"series": f'up{{job="{job}",instance="{instance}"}}', "values": values}
        for job, instance, values in (
            (api.job, "a:8000", "1x5 0x415"),
            (api.job, "a2:8000", "1x420"),
            (web.job, "b:8000", "1x420"),
            ("unruled", "c:8000", "0x420"),
        )
    ]
    # 0.4% failing burns api's 0.1% budget 4 times over (a ticket), web's 0.5%
    # budget at 0.8 (nothing); the third service fails half its requests and
    # has no rules here: nothing about it.
    api_alerts, web_alerts = rule_tests.Alerts(api), rule_tests.Alerts(web)
    burn = api_alerts.check(
        "SLOAvailabilitySlowBurn", "7h", rule_tests.Expect({"slo": "availability"}, 4.0)
    )
    down = api_alerts.check("ScrapeTargetDown", "7h", rule_tests.Expect({"instance": "a:8000"}, 0))
    spent = api_alerts.check(
        "SLOErrorBudgetExhausted", "7h", rule_tests.Expect({"slo": "availability"}, -3.0)
    )
    assert web_alerts.rules["ScrapeTargetDown"] != api_alerts.rules["ScrapeTargetDown"]
    return {
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "two services' rules and a third service without: each its own",
                "interval": "1m",
                "input_series": steady + targets,
                "alert_rule_test": [
                    burn,
                    down,
                    spent,
                    # The alerts share their names: web's would be listed too.
                    *api_alerts.quiet(["SLOAvailabilityFastBurn", "ServiceDown"], "7h"),
                ],
                "promql_expr_test": [
                    {
                        "expr": "slo:objective:ratio",
                        "eval_time": "1m",
                        "exp_samples": [
                            {
                                "labels": f'slo:objective:ratio{{job="{s.job}",slo="{o.slo}"}}',
                                "value": o.target,
                            }
                            for s in (api, web)
                            for o in s.slos
                        ],
                    },
                    {
                        "expr": "count by (job, slo) (slo:sli_error:ratio_rate5m)",
                        "eval_time": "7h",
                        "exp_samples": [
                            {"labels": f'{{job="{s.job}",slo="{o.slo}"}}', "value": 1}
                            for s in (api, web)
                            for o in s.slos
                        ],
                    },
                    {
                        # What fires is api's alone: its burn, its spent budget, its target.
                        "expr": 'count by (job, alertname) (ALERTS{alertstate="firing"})',
                        "eval_time": "7h",
                        "exp_samples": [
                            {"labels": f'{{job="{api.job}",alertname="{name}"}}', "value": 1}
                            for name in (
                                "SLOAvailabilitySlowBurn",
                                "SLOErrorBudgetExhausted",
                                "ScrapeTargetDown",
                            )
                        ],
                    },
                ],
            }
        ],
    }


def test_two_services_rules_side_by_side(tmp_path: Path) -> None:
    contexts: list[dict[str, Any]] = [
        {"project_slug": "api"},
        {"project_slug": "web", "slo_availability": "99.5"},
    ]
    files = []
    for context in contexts:
        write(tmp_path / context["project_slug"], context)
        files += [f"{context['project_slug']}/{name}.yml" for name in ("recording", "alerts")]
    api, web = map(service, contexts)
    # Group names carry the job, so each service's groups are told apart.
    names = [
        group["name"]
        for path in files
        for group in yaml.safe_load((tmp_path / path).read_text())["groups"]
    ]
    assert len(names) == len(set(names))
    (tmp_path / "side_by_side.yml").write_text(
        yaml.safe_dump({"rule_files": files, **side_by_side(api, web)}, sort_keys=False)
    )
    result = promtool("test", "rules", "side_by_side.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alerts_match_their_expressions() -> None:
    """Each alert's text names the windows and thresholds its expression uses."""
    example = service(EXAMPLE)
    for group in alerts_file(example)["groups"]:
        for rule in group["rules"]:
            expr, text = rule["expr"], rule["annotations"]["description"]
            promql_parser.parse(expr)
            for duration in re.findall(r"\[(\d+[mhd])\]", expr):
                minutes = seconds(duration) // 60
                spoken = {f"{minutes} minutes", duration, "hour" if minutes == 60 else duration}
                assert any(word in text for word in spoken), (rule["alert"], duration)
            if "for" in rule:
                minutes = seconds(rule["for"]) // 60
                assert f"{minutes} minutes" in text or rule["alert"].startswith("SLO"), rule[
                    "alert"
                ]
