"""The Prometheus rules: valid for promtool, and unit-tested so that every alert
both fires on its condition and stays quiet without it."""

from __future__ import annotations

import re
import subprocess

import yaml
from prometheus_client.utils import floatToGoString

from kit.render import KIT_ROOT
from kit.system import require

RULES = KIT_ROOT / "grafana" / "rules"
CONTRACT = KIT_ROOT / "docs" / "contract.md"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require("promtool")["promtool"]
    return subprocess.run([binary, *args], capture_output=True, text=True, cwd=KIT_ROOT)


def alert_names() -> set[str]:
    names = set()
    for path in RULES.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["alert"] for rule in group["rules"] if "alert" in rule}
    return names


def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", *map(str, sorted(RULES.glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    tests = sorted(RULES.glob("tests/*.yml"))
    assert tests
    result = promtool("test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests)


def test_every_alert_is_tested_firing_and_quiet() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULES.glob("tests/*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = alert_names()
    assert {"ServiceNotReady", "DatabasePoolExhausted", "ScrapeTargetDown"} <= names
    assert len([n for n in names if n.startswith("SLO")]) == 4
    assert names - fired == set(), "alerts never seen firing"
    assert names - quiet == set(), "alerts never seen staying quiet"


def test_le_values_are_written_as_prometheus_3_stores_them() -> None:
    # Prometheus 3 (compose.yaml's) normalises `le` on ingestion to the float form
    # the services already expose ("1.0", never "1"); Prometheus 2 stores it as
    # exposed. A matcher on a bucket bound in that form matches under both.
    (bounds,) = re.findall(r"histogram, buckets `([^`]+)`", CONTRACT.read_text())
    exposed: set[str] = {
        floatToGoString(float(bound))  # type: ignore[no-untyped-call]  # untyped upstream
        for bound in bounds.split()
    }
    files = [*RULES.glob("*.yml"), *RULES.glob("tests/*.yml")]
    files += (KIT_ROOT / "grafana" / "dashboards").glob("*.json")
    matched = {
        value
        for path in files
        for value in re.findall(r'\ble\s*=~?\s*\\?"([^"\\]+)', path.read_text())
    }
    assert matched, "no rule reads a bucket bound: nothing checked"
    assert matched <= exposed, f"le values not in their exposed form: {matched - exposed}"
