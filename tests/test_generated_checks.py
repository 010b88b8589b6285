"""A generated project passes its own checks out of the box: tests, lint, types."""

from __future__ import annotations

import pytest

from tests.kit.project import Project
from tests.kit.system import unavailable

pytestmark = pytest.mark.boot


def run(project: Project, *command: str) -> str:
    result = project.run([str(project.bin / command[0]), *command[1:]], timeout=600)
    assert result.returncode == 0, (
        f"{' '.join(command)}:\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout


def test_own_tests_pass(project: Project) -> None:
    output = run(project, "pytest", "-q", "-rs", "-p", "no:cacheprovider")
    # Its resilience tests skip without PostgreSQL's server programs: a tier missing.
    skipped = [line for line in output.splitlines() if line.startswith("SKIPPED")]
    if skipped:
        unavailable("the project's tests skipped:\n" + "\n".join(skipped))


def test_ruff_is_clean(project: Project) -> None:
    run(project, "ruff", "check", "--no-cache", ".")
    run(project, "ruff", "format", "--no-cache", "--check", ".")


def test_mypy_is_clean(project: Project) -> None:
    run(project, "mypy", "--no-incremental", project.package, "tests", "gunicorn.conf.py")
