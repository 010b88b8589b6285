"""A generated project passes its own checks out of the box (its `make test`,
`make lint` and `make typecheck`); `make test` runs on the oldest Python the
project allows with the lowest dependency versions it allows, resilience tests
included; its dependencies' module names are refused as package names
(contract section 1).

The same tests with the latest versions run elsewhere, once each: against
PostgreSQL as the generated pipeline runs them (tests/test_deploy.py), on
SQLite for each other answer set (tests/test_matrix.py) and after the example's
deletion (below); the behaviour the resilience tests check, in the kit's own
resilience tier (tests/test_resilience.py).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import tomllib
from pathlib import Path
from xml.etree import ElementTree

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from hooks.kit_hooks import DEPENDENCY_MODULES
from kit.example import delete_example
from kit.modules import top_level_modules
from kit.postgres import PROGRAMS
from kit.project import Project
from kit.pythons import oldest_interpreter_for
from kit.render import render
from kit.system import require, unavailable

pytestmark = pytest.mark.boot


def make(project: Project, target: str, **env: str) -> str:
    result = project.run(["make", target], timeout=900, **env)
    assert result.returncode == 0, (
        f"make {target}:\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout


def assert_all_passed(out: str) -> None:
    """pytest's closing line says only "passed" (the lines before may quote anything)."""
    (summary,) = re.findall(r"^=+ (.*) in [\d.]+s(?: \(.*\))? =+$", out, re.MULTILINE)[-1:]
    assert re.fullmatch(r"\d+ passed(, \d+ warnings?)?", summary), summary


def test_make_lint_passes(project: Project) -> None:
    out = make(project, "lint")
    assert "ruff check" in out and "ruff format --check" in out


def test_make_typecheck_covers_what_the_project_runs(project: Project) -> None:
    out = make(project, "typecheck")
    assert "Success: no issues found" in out
    # Everything the service runs is checked: the server's configuration too.
    files = tomllib.loads((project.path / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    assert {project.package, "tests", "gunicorn.conf.py"} <= set(files)
    assert all((project.path / name).exists() for name in files)


def test_installed_modules_cannot_be_package_names(project: Project) -> None:
    missing = top_level_modules(project.path / ".venv", project.package) - DEPENDENCY_MODULES
    assert not missing, (
        f"modules installed with the {project.framework} project that the pre-gen hook does "
        f"not refuse as package names: {sorted(missing)}; run `python -m kit.modules`"
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


def _lower_bounds(pyproject: dict[str, object]) -> dict[NormalizedName, Version]:
    """Every direct dependency's ``>=`` bound: the runtime ones, extras, dependency groups."""
    meta = pyproject["project"]
    assert isinstance(meta, dict)
    groups = pyproject.get("dependency-groups", {})
    assert isinstance(groups, dict)
    lines = [
        *meta["dependencies"],
        *(line for extra in meta.get("optional-dependencies", {}).values() for line in extra),
        *(line for group in groups.values() for line in group if isinstance(line, str)),
    ]
    bounds = {}
    for line in lines:
        requirement = Requirement(line)
        for spec in requirement.specifier:
            if spec.operator == ">=":
                bounds[canonicalize_name(requirement.name)] = Version(spec.version)
    return bounds


def _floor(requires_python: str) -> Version:
    (floor,) = (Version(s.version) for s in SpecifierSet(requires_python) if s.operator == ">=")
    return floor


def test_make_test_passes_on_the_oldest_python_with_the_lowest_dependencies(
    project: Project, tmp_path: Path
) -> None:
    """requires-python and every lower bound in pyproject.toml are true."""
    pyproject = tomllib.loads((project.path / "pyproject.toml").read_text())
    floor = _floor(pyproject["project"]["requires-python"])
    python = oldest_interpreter_for(project.path)
    oldest = project.run([python, "-c", "import platform; print(platform.python_version())"])
    if Version(oldest.stdout).release[:2] != floor.release[:2]:
        message = f"requires-python floor {floor} is not installed here (oldest: {oldest.stdout})"
        unavailable(message)

    copy = Project(project.framework, tmp_path / project.path.name)
    shutil.copytree(
        project.path,
        copy.path,
        ignore=shutil.ignore_patterns(".venv", "uv.lock", "*_cache", "__pycache__", "*.sqlite3*"),
    )
    lowest = {"UV_RESOLUTION": "lowest-direct", "UV_PYTHON": python, "UV_PYTHON_DOWNLOADS": "never"}
    synced = copy.run(["uv", "sync", "--all-extras", "--quiet"], timeout=600, **lowest)
    assert synced.returncode == 0, synced.stderr[-4000:]

    # Each bound is the version installed, not a fiction below what resolves.
    listing = copy.run(["uv", "pip", "list", "--format", "json"])
    installed = {
        canonicalize_name(d["name"]): Version(d["version"]) for d in json.loads(listing.stdout)
    }
    unreachable = {
        name: f">={bound} resolves to {installed[name]}"
        for name, bound in _lower_bounds(pyproject).items()
        if installed[name].release[:2] != (*bound.release, 0)[:2]
    }
    assert not unreachable, f"lower bounds below what resolves: {unreachable}"

    missing = top_level_modules(copy.path / ".venv", copy.package) - DEPENDENCY_MODULES
    assert not missing, f"not refused as package names: {sorted(missing)}"

    # With PostgreSQL's server programs here, the project's resilience tests
    # run: each one must have passed, not been skipped.
    require(*PROGRAMS)
    report = tmp_path / "report.xml"
    # A temporary directory of the run's own, which the private PostgreSQL
    # server's user can enter (pytest's are its owner's alone).
    scratch = Path(tempfile.mkdtemp(prefix="kit-make-test-"))
    scratch.chmod(0o755)
    try:
        addopts = f"--junitxml={report}"
        out = make(copy, "test", PYTEST_ADDOPTS=addopts, TMPDIR=str(scratch), **lowest)
        # A test run leaves nothing behind there but pytest's and uv's own.
        left = sorted(
            p.name for p in scratch.iterdir() if not any(map(p.match, ("pytest-of-*", "uv-*.lock")))
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert_all_passed(out)
    assert not left, left
    found = outcomes(report)
    assert "skipped" not in found.values(), found
    resilience = {name: outcome for name, outcome in found.items() if ".resilience." in name}
    assert len(resilience) >= 4, resilience
    assert set(resilience.values()) == {"passed"}, resilience


def test_the_example_can_be_deleted_and_nothing_else_breaks(
    project: Project, tmp_path: Path
) -> None:
    """The steps of the generated README ("Where things go") on a fresh render:
    the team's formatter tidies the imports, then its checks pass and the
    service serves."""
    copy = Project(project.framework, render(project.framework, tmp_path / "render"))
    delete_example(copy.path, copy.framework)
    copy.install()
    make(copy, "format")
    assert_all_passed(make(copy, "check"))
    assert not list(copy.path.rglob("test_items.py"))
    database = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    copy.release(DATABASE_URL=database)
    service = copy.start(tmp_path / "service", DATABASE_URL=database, OTEL_TRACES_EXPORTER="none")
    try:
        for path in ("/healthz", "/ready", "/"):
            assert service.get(path)[0] == 200, path
        assert service.get("/api/items")[0] == 404
    finally:
        service.kill()
