"""A generated project passes its own checks out of the box: tests, lint, types."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.kit.postgres import PROGRAMS
from tests.kit.project import Project
from tests.kit.system import require

pytestmark = pytest.mark.boot


def run(project: Project, *command: str) -> None:
    result = project.run([str(project.bin / command[0]), *command[1:]], timeout=600)
    assert result.returncode == 0, (
        f"{' '.join(command)}:\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    )


def outcomes(report: Path) -> dict[str, str]:
    """Each test of a JUnit XML report, by class and name: passed, skipped or failed."""
    found = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        outcome = (
            "failed"
            if kinds & {"failure", "error"}
            else "skipped"
            if "skipped" in kinds
            else "passed"
        )
        found[f"{case.get('classname')}::{case.get('name')}"] = outcome
    return found


def test_own_tests_pass(project: Project, tmp_path: Path) -> None:
    # With PostgreSQL's server programs here, the project's resilience tests
    # run: each one must have passed, not been skipped.
    require(*PROGRAMS)
    report = tmp_path / "report.xml"
    run(project, "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}")
    resilience = {
        name: outcome for name, outcome in outcomes(report).items() if ".resilience." in name
    }
    assert len(resilience) >= 4, resilience
    assert set(resilience.values()) == {"passed"}, resilience


def test_ruff_is_clean(project: Project) -> None:
    run(project, "ruff", "check", "--no-cache", ".")
    run(project, "ruff", "format", "--no-cache", "--check", ".")


def test_mypy_is_clean(project: Project) -> None:
    run(project, "mypy", "--no-incremental", project.package, "tests", "gunicorn.conf.py")
