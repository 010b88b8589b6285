"""The render matrix, in the manner of cookiecutter-django's generation tests:
every ``ci_provider`` and set of objectives, each with a framework,
renders a project that passes ruff, mypy, its own tests (with its coverage
floor) and its pipeline's validator.

Answers change no dependency (each render's pyproject.toml is the base's, and
the test says so), so one environment per framework serves every answer set:
the base render, generated with its uv.lock as a user gets it and installed
from that lock. The checks run the environment's tools on each render's own
files (``PYTHONPATH`` puts the render first; a test shows that a fault planted
in a render fails each check). A framework's tests share one xdist worker,
hence one environment; frameworks run in parallel. mypy's cache is the
framework's, for every tier (kit/project.py).
Boot-heavy work stays out: the resilience tests (a PostgreSQL server and
gunicorn per scenario) run in tests/test_generated_checks.py.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kit import pipelines
from kit.deploy import tool
from kit.project import Project
from kit.render import render
from kit.system import require
from monitoring import slo
from monitoring.project import EXAMPLE, rule_files
from tests.objectives import OBJECTIVES

pytestmark = pytest.mark.matrix

# The CI providers other than the default, each with a set of objectives whose
# rules tests/test_rules.py runs promtool's tests on.
ANSWER_SETS: dict[str, dict[str, Any]] = {
    "gitlab": {"ci_provider": "gitlab", **OBJECTIVES["common"]},
    "none": {"ci_provider": "none", **OBJECTIVES["limits"]},
}


@dataclass
class Toolchain:
    """A framework's installed base render, whose environment checks every render."""

    base: Project

    def check(self, project: Path, *tests: str) -> dict[str, subprocess.CompletedProcess[str]]:
        """ruff, mypy and the tests (coverage floor included) on ``project``, as
        `make check` runs them, with this environment's tools; ``tests``, only
        those test files."""
        env = self.base.env(PYTHONPATH=str(project))
        tools = self.base.bin
        pytest = [f"{tools}/python", "-m", "pytest", "-p", "no:cacheprovider", "-q"]
        commands = {
            "ruff check": [f"{tools}/ruff", "check", "--no-cache", "."],
            "ruff format": [f"{tools}/ruff", "format", "--check", "--no-cache", "."],
            "mypy": [f"{tools}/mypy"],
            # As `make test`, less the resilience tests (boot-heavy, run elsewhere).
            "tests": [*pytest, "--cov", "-m", "not resilience", *tests],
        }
        return {
            name: subprocess.run(
                command,
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            for name, command in commands.items()
        }


@pytest.fixture(scope="session")
def toolchain(framework: str, tmp_path_factory: pytest.TempPathFactory) -> Toolchain:
    path = render(framework, tmp_path_factory.mktemp(f"{framework}-matrix"), lock=True)
    assert (path / "uv.lock").is_file(), "generation made no uv.lock"
    base = Project(framework, path)
    base.install(locked=True)  # the lock made at generation is complete and current
    return Toolchain(base)


def failures(results: dict[str, subprocess.CompletedProcess[str]]) -> dict[str, str]:
    return {
        name: (result.stdout[-4000:] + result.stderr[-2000:])
        for name, result in results.items()
        if result.returncode != 0
    }


# Each framework with one answer set other than the defaults (which every
# other tier renders), so that every set meets a framework and every framework
# a set: a diagonal of the matrix, since an answer changes the same files in
# every framework (the layers of kit_hooks.CI_LAYERS, grafana/rules/).
DIAGONAL = [("fastapi", "gitlab"), ("flask", "none"), ("django", "none")]


@pytest.mark.parametrize(("framework", "answers"), DIAGONAL, indirect=["framework"])
def test_every_answer_set_gives_a_project_that_passes_its_checks(
    framework: str, answers: str, toolchain: Toolchain, tmp_path: Path
) -> None:
    project = render(framework, tmp_path, **ANSWER_SETS[answers])
    assert (project / "pyproject.toml").read_text() == (
        toolchain.base.path / "pyproject.toml"
    ).read_text(), "answers changed the project's dependencies: it needs its own environment"
    assert pipelines.problems(project, ANSWER_SETS[answers]["ci_provider"]) == []
    # The answers are the project's objectives: its rules judge it by them. They
    # are the rules whose promtool tests tests/test_rules.py runs for these
    # objectives, byte for byte, so promtool only checks them here.
    chosen = {**slo.DEFAULTS, **ANSWER_SETS[answers]}
    rules = project / "grafana" / "rules"
    recording = (rules / "recording.yml").read_text()
    for key in ("slo_availability", "slo_latency_target"):
        assert f"vector({slo.number(float(chosen[key]) / 100)})" in recording, key
    assert f'le="{slo.le(float(chosen["slo_latency_seconds"]))}"' in recording
    tested = rule_files({**EXAMPLE, **ANSWER_SETS[answers]})
    assert {
        path.relative_to(rules).as_posix(): path.read_text() for path in rules.rglob("*.yml")
    } == tested
    promtool = require("promtool")["promtool"]
    checked = subprocess.run(
        [promtool, "check", "rules", "alerts.yml", "recording.yml"],
        cwd=rules,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    results = toolchain.check(project)
    assert not failures(results), failures(results)
    assert "Required test coverage of" in results["tests"].stdout


def test_generation_locks_what_the_project_installs(toolchain: Toolchain) -> None:
    # The base's environment came from `uv sync --locked` (the fixture): the
    # lock made by the post-generation hook is current for its pyproject.toml.
    checked = toolchain.base.run(
        ["uv", "lock", "--check", "--offline"], UV_PYTHON_DOWNLOADS="never"
    )
    assert checked.returncode == 0, checked.stderr


# The hooks are one file every template shares (templates/_shared), and what
# they run is the framework's `make lint` and `make typecheck`, which every
# framework's checks run: one framework's project shows the hooks pass and stop.
@pytest.mark.parametrize("framework", ["fastapi"], indirect=True)
def test_pre_commit_hooks_pass_and_stop_what_make_check_stops(
    framework: str, toolchain: Toolchain, tmp_path: Path
) -> None:
    base = toolchain.base
    env: dict[str, Any] = {
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit"),
        "UV_PYTHON_DOWNLOADS": "never",
    }
    pre_commit = tool("pre-commit")
    for command in (["git", "init", "--quiet"], ["git", "add", "--all"]):
        assert base.run(command).returncode == 0
    passed = base.run([pre_commit, "run", "--all-files"], **env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.count("Passed") == 3, passed.stdout

    planted = base.path / base.package / "planted.py"
    planted.write_text('import os\n\n\ndef planted() -> int:\n    return "one"\n')
    try:
        base.run(["git", "add", "--all"])
        failed = base.run([pre_commit, "run", "--all-files"], **env)
    finally:
        planted.unlink()
        base.run(["git", "add", "--all"])
    assert failed.returncode != 0
    assert "F401" in failed.stdout, "ruff check stops the commit"
    assert "planted.py:5: error: Incompatible return value" in failed.stdout, "so does mypy"


@pytest.mark.parametrize("framework", ["flask"], indirect=True)
def test_each_check_fails_on_a_fault_planted_in_the_render(
    framework: str, toolchain: Toolchain, tmp_path: Path
) -> None:
    # The environment is the base's, the files are the render's: a fault in
    # the render, and only there, fails every check.
    project = render(framework, tmp_path, ci_provider="gitlab")
    package = project / project.name.replace("-", "_")
    (package / "planted.py").write_text("import os\n\n\ndef planted() -> int:\n    return 'one'\n")
    (project / "tests" / "test_planted.py").write_text(
        "def test_planted() -> None:\n    assert 1 + 1 == 3\n"
    )
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    floor = next(line for line in text.splitlines() if line.startswith("fail_under = "))
    pyproject.write_text(text.replace(floor, "fail_under = 100"))
    pipeline = project / ".gitlab-ci.yml"
    pipeline.write_text(pipeline.read_text().replace("  script:\n    - make lint", "  scirpt:"))

    # The planted test alone: whether the render's tests are the ones run, and
    # its coverage the one measured (every other render's whole suite passes).
    results = toolchain.check(project, "tests/test_planted.py")
    assert set(failures(results)) == {"ruff check", "ruff format", "mypy", "tests"}
    out = {name: result.stdout for name, result in results.items()}
    assert "F401" in out["ruff check"]
    assert "planted.py" in out["ruff format"]
    assert "planted.py:5: error: Incompatible return value" in out["mypy"]
    assert "1 failed" in out["tests"]
    assert "Required test coverage of 100.0% not reached" in out["tests"]
    (problem,) = pipelines.problems(project, "gitlab")
    assert problem.startswith("GitLab CI/CD schema") and "scirpt" in problem
