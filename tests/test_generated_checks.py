"""A generated project passes its own checks out of the box: tests, lint, types."""

from __future__ import annotations

import pytest

from tests.kit.project import Project

pytestmark = pytest.mark.boot


def run(project: Project, *command: str) -> None:
    result = project.run([str(project.bin / command[0]), *command[1:]], timeout=600)
    assert result.returncode == 0, (
        f"{' '.join(command)}:\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    )


def test_own_tests_pass(project: Project) -> None:
    run(project, "pytest", "-q", "-p", "no:cacheprovider")


def test_ruff_is_clean(project: Project) -> None:
    run(project, "ruff", "check", "--no-cache", ".")
    run(project, "ruff", "format", "--no-cache", "--check", ".")


def test_mypy_is_clean(project: Project) -> None:
    run(project, "mypy", "--no-incremental", project.package, "tests", "gunicorn.conf.py")
