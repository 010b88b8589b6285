"""Rendering: every template, with default and awkward answers, gives a clean project;
answers that cannot work stop in the pre-generation hook and leave nothing behind."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException

from kit.render import FRAMEWORKS, KIT_ROOT, render

pytestmark = pytest.mark.render

# Jinja left unrendered in a file that is not meant to keep it.
UNRENDERED = re.compile(r"{{\s*cookiecutter|{%-?\s*(if|for|raw|set)\b|cookiecutter\.")
# Files whose own template syntax (Grafana legends, Alertmanager annotations) is kept.
KEEPS_BRACES = ("grafana/",)

AWKWARD_NAMES = {
    "My Shop API": ("my-shop-api", "my_shop_api"),
    "UPPER case": ("upper-case", "upper_case"),
    "Café Ünïcode Sérvice": ("cafe-unicode-service", "cafe_unicode_service"),
    "hyphen-ated--name": ("hyphen-ated-name", "hyphen_ated_name"),
    "  padded   name  ": ("padded-name", "padded_name"),
}


def project_files(project: Path) -> list[Path]:
    return sorted(p for p in project.rglob("*") if p.is_file())


def assert_clean(project: Path) -> None:
    for path in project_files(project):
        relative = path.relative_to(project).as_posix()
        if relative.startswith(KEEPS_BRACES):
            continue
        text = path.read_text(encoding="utf-8")
        assert not UNRENDERED.search(text), f"unrendered Jinja in {relative}"
        if path.suffix == ".py":
            ast.parse(text, filename=relative)
    tomllib.loads((project / "pyproject.toml").read_text())


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_defaults_render_a_complete_project(framework: str, tmp_path: Path) -> None:
    project = render(framework, tmp_path)
    assert project.name == "example-service"
    for required in (
        "pyproject.toml",
        "Procfile",
        "Makefile",
        "README.md",
        "gunicorn.conf.py",
        "example_service/logging.py",
        "example_service/tracing.py",
        "example_service/metrics.py",
        "example_service/config.py",
        "tests",
    ):
        assert (project / required).exists(), required
    assert_clean(project)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", sorted(AWKWARD_NAMES))
def test_awkward_names_give_valid_identifiers(framework: str, name: str, tmp_path: Path) -> None:
    slug, package = AWKWARD_NAMES[name]
    project = render(framework, tmp_path, project_name=name)
    assert project.name == slug
    assert (project / package / "__init__.py").exists()
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert meta["name"] == slug
    assert_clean(project)
    # Every render is lint-clean, as a freshly generated project must be.
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--quiet", str(project)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_quotes_in_free_text_do_not_break_the_project(framework: str, tmp_path: Path) -> None:
    project = render(
        framework,
        tmp_path,
        project_name='Quote "Test" Service',
        description="It says \"hello\" \\ and {braces} 'quoted'",
        author_name='O\'Brien "Bob"',
    )
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert meta["description"] == "It says \"hello\" \\ and {braces} 'quoted'"
    assert meta["authors"][0]["name"] == 'O\'Brien "Bob"'
    assert_clean(project)


INVALID = [
    ({"package_name": "1service"}, "package_name"),
    ({"package_name": "my-service"}, "package_name"),
    ({"package_name": "class"}, "keyword"),
    ({"package_name": "logging"}, "standard library"),
    ({"package_name": "fastapi"}, "shadow a dependency"),
    ({"project_name": "123 Go"}, "project_slug"),
    ({"project_slug": "Bad_Slug"}, "project_slug"),
    ({"project_slug": "x" * 41, "package_name": "ok"}, "project_slug"),
    ({"version": "one"}, "version"),
    ({"author_email": "not-an-address"}, "author_email"),
    ({"project_name": "   "}, "project_name"),
]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(("answers", "reason"), INVALID, ids=[r for _, r in INVALID])
def test_invalid_answers_stop_with_a_clear_message_and_leave_nothing(
    framework: str, answers: dict[str, str], reason: str, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "--directory",
            f"templates/{framework}",
            "-o",
            str(output),
            str(KIT_ROOT),
            *(f"{key}={value}" for key, value in answers.items()),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert reason in result.stderr, result.stderr
    assert "Nothing was generated" in result.stderr
    assert not output.exists() or not any(output.iterdir())


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_direct_python_api_rejects_invalid_answers(framework: str, tmp_path: Path) -> None:
    with pytest.raises(FailedHookException):
        render(framework, tmp_path, package_name="import")
    assert not any(tmp_path.iterdir())


def test_the_kit_root_asks_which_framework(tmp_path: Path) -> None:
    # Without --directory, cookiecutter offers the nested templates; --no-input takes the first.
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path), str(KIT_ROOT)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    project = tmp_path / "example-service"
    assert "fastapi" in (project / "pyproject.toml").read_text()


def test_the_root_lists_exactly_the_templates_that_exist() -> None:
    import json

    listed = json.loads((KIT_ROOT / "cookiecutter.json").read_text())["templates"]
    assert set(listed) == set(FRAMEWORKS)
    for entry in listed.values():
        assert (KIT_ROOT / entry["path"] / "cookiecutter.json").is_file()
        assert (KIT_ROOT / entry["path"] / "hooks").resolve() == KIT_ROOT / "hooks"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_projects_resilience_harness_is_the_kits_own(framework: str, tmp_path: Path) -> None:
    project = render(framework, tmp_path)
    for module in ("process.py", "faultproxy.py", "postgres.py"):
        copy = project / "tests" / "resilience" / module
        assert copy.read_bytes() == (KIT_ROOT / "kit" / module).read_bytes(), module
    assert (project / "tests" / "resilience" / "test_resilience.py").is_file()


# Names of modules that the projects' dependencies install (hooks/dependency_modules.txt).
@pytest.mark.parametrize(
    ("framework", "package"),
    [
        ("fastapi", "requests"),
        ("fastapi", "uvloop"),
        ("fastapi", "pydantic_core"),
        ("flask", "mako"),
        ("flask", "typing_extensions"),
        ("flask", "google"),
        ("django", "sqlparse"),
        ("django", "yaml"),
        ("django", "anyio"),
    ],
)
def test_package_names_that_shadow_a_dependency_are_refused(
    framework: str, package: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(FailedHookException):
        render(framework, tmp_path, package_name=package)
    assert f"package_name {package!r} would shadow a dependency" in capfd.readouterr().err
    assert not any(tmp_path.iterdir())


def used_modules(project: Path, package: str) -> set[str]:
    """The package's modules that the service's code imports or names (as
    gunicorn's ``worker_class`` or Django's settings do); tests do not count."""
    used: set[str] = set()
    for path in project.rglob("*.py"):
        if "tests" in path.relative_to(project).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                parts = (node.module or "").split(".")
                if node.level or parts[0] == package:
                    used.update(parts, (alias.name for alias in node.names))
            elif isinstance(node, ast.Import):
                used.update(
                    part
                    for alias in node.names
                    if alias.name.split(".")[0] == package
                    for part in alias.name.split(".")
                )
            elif isinstance(node, ast.Constant) and str(node.value).startswith(package + "."):
                used.update(str(node.value).split("."))
    return used


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_shared_module_a_project_gets_is_used(framework: str, tmp_path: Path) -> None:
    project = render(framework, tmp_path)
    package = project.name.replace("-", "_")
    layers = json.loads((KIT_ROOT / "templates" / framework / "cookiecutter.json").read_text())
    shared = {
        module.stem
        for layer in layers["_shared"]
        for module in (
            KIT_ROOT / "templates" / "_shared" / layer / "{{cookiecutter.package_name}}"
        ).glob("*.py")
        if module.stem != "__init__"
    }
    assert shared, "no shared modules found"
    unused = shared - used_modules(project, package)
    assert not unused, f"shared modules rendered into the {framework} project but unused: {unused}"
