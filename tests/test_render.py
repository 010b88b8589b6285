"""Rendering: every template, with default and awkward answers, gives a clean project;
answers that cannot work stop in the pre-generation hook and leave nothing behind."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException

from hooks.kit_hooks import VERBATIM, problems
from kit.deadcode import unused
from kit.render import FRAMEWORKS, KIT_ROOT, environment, render
from kit.update import kit_files
from monitoring.slo import FASTEST_BURN_RATE, LATENCY_BOUNDS, MIN_OBJECTIVE

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
        "docs/contract.md",
        "example_service/runtime/__init__.py",
        "example_service/runtime/build.py",
        "example_service/runtime/pipeline.py",
        "example_service/runtime/logging.py",
        "example_service/runtime/tracing.py",
        "example_service/runtime/metrics.py",
        "example_service/runtime/config.py",
        "tests/runtime/__init__.py",
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


def cookiecutter_cli(
    framework: str, output: Path, answers: dict[str, str], **env: str
) -> subprocess.CompletedProcess[str]:
    """``cookiecutter --no-input`` of the framework's template, as a user runs it."""
    return subprocess.run(
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
        env={**os.environ, **env},
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(("answers", "reason"), INVALID, ids=[r for _, r in INVALID])
def test_invalid_answers_stop_with_a_clear_message_and_leave_nothing(
    framework: str, answers: dict[str, str], reason: str, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    result = cookiecutter_cli(framework, output, answers)
    assert result.returncode != 0
    assert reason in result.stderr, result.stderr
    assert "Nothing was generated" in result.stderr
    assert not output.exists() or not any(output.iterdir())


@pytest.mark.parametrize("answers", [{}, {"package_name": "class"}], ids=["generated", "refused"])
def test_generation_leaves_nothing_in_the_temporary_directory(
    answers: dict[str, str], tmp_path: Path
) -> None:
    """cookiecutter renders each hook into the temporary directory and leaves it
    there; the hooks remove their own copies, whether generation goes on or stops."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    result = cookiecutter_cli("flask", tmp_path / "out", answers, TMPDIR=str(temporary))
    assert result.returncode == (1 if answers else 0), result.stderr
    assert sorted(path.name for path in temporary.iterdir()) == []


def test_every_bad_answer_is_named_in_one_message(tmp_path: Path) -> None:
    output = tmp_path / "out"
    result = cookiecutter_cli(
        "fastapi",
        output,
        {
            "version": "one",
            "slo_availability": "100",
            "slo_latency_seconds": "0.3",
            "slo_latency_target": "abc",
        },
    )
    assert result.returncode != 0
    named = re.findall(r"^  - (\w+) ", result.stderr, re.MULTILINE)
    assert named == ["version", "slo_availability", "slo_latency_seconds", "slo_latency_target"]
    # Each objective's line says what is allowed.
    assert "from 93.06 to below 100" in result.stderr
    assert "0.005 0.01 0.025 0.05 0.075 0.1 0.25 0.5 0.75 1 2.5 5 7.5 10" in result.stderr
    assert not output.exists() or not any(output.iterdir())


def test_an_unknown_ci_provider_is_refused_before_generation(tmp_path: Path) -> None:
    # A choice variable: cookiecutter refuses another value itself, before the
    # hooks run, naming the variable and the choices.
    output = tmp_path / "out"
    result = cookiecutter_cli("flask", output, {"ci_provider": "jenkins"})
    assert result.returncode != 0
    assert "jenkins provided for choice variable ci_provider" in result.stderr, result.stderr
    assert "['github', 'gitlab', 'none']" in result.stderr
    assert not output.exists() or not any(output.iterdir())
    # The hook's own check, for a context that reaches it unchecked (cruft, the API).
    assert problems({**DEFAULTS, "ci_provider": "jenkins"}) == [
        "ci_provider 'jenkins' is not one of 'github', 'gitlab', 'none'."
    ]


# Valid answers, as the pre-generation hook receives them.
DEFAULTS = {
    "project_name": "Example Service",
    "project_slug": "example-service",
    "package_name": "example_service",
    "version": "0.1.0",
    "ci_provider": "github",
    "slo_availability": "99.9",
    "slo_latency_seconds": "0.5",
    "slo_latency_target": "99",
}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("slo_availability", "100"),
        ("slo_availability", "99.9%"),
        ("slo_availability", "90"),
        ("slo_availability", "93.05"),
        ("slo_availability", " 99.9"),
        ("slo_latency_target", "0"),
        ("slo_latency_target", "-99"),
        ("slo_latency_target", "99.99999"),
        ("slo_latency_target", ""),
        ("slo_latency_seconds", "0.3"),
        ("slo_latency_seconds", "half"),
        ("slo_latency_seconds", "1e0"),
        ("slo_latency_seconds", "0"),
        ("slo_latency_seconds", "nan"),
    ],
)
def test_a_bad_objective_is_refused_with_its_rule(key: str, value: str) -> None:
    # The hook's check in-process; the command line's message and clean-up are
    # tested above with every kind of bad answer at once.
    (problem,) = problems({**DEFAULTS, key: value})
    assert problem.startswith(f"{key} {value!r} must be "), problem


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("slo_availability", "93.06"),
        ("slo_availability", "99.9999"),
        ("slo_latency_target", "95"),
        ("slo_latency_seconds", "0.005"),
        ("slo_latency_seconds", "10"),
        ("slo_latency_seconds", "0.50"),
        ("ci_provider", "gitlab"),
        ("ci_provider", "none"),
    ],
)
def test_objectives_and_providers_at_their_limits_are_accepted(key: str, value: str) -> None:
    assert problems(DEFAULTS) == []
    assert problems({**DEFAULTS, key: value}) == []


def test_objective_limits_follow_the_contract_and_the_alerts() -> None:
    # The latency threshold's choices are the contract's bucket bounds, which
    # the prompt lists; the lowest objective is where the fastest page can
    # still fire (monitoring/slo.py's burn rates).
    from monitoring.slo import BURN_ALERTS

    contract = (KIT_ROOT / "docs/contract.md").read_text()
    row = next(line for line in contract.splitlines() if "histogram, buckets" in line)
    assert [str(bound) for bound in LATENCY_BOUNDS] == row.split("`")[3].split()
    fastest = max(rate for alert in BURN_ALERTS for _, _, rate in alert.conditions)
    assert Decimal(str(fastest)) == FASTEST_BURN_RATE
    assert (100 - MIN_OBJECTIVE) * FASTEST_BURN_RATE / 100 < 1
    assert (100 - MIN_OBJECTIVE + Decimal("0.01")) * FASTEST_BURN_RATE / 100 > 1
    for framework in FRAMEWORKS:
        template = json.loads(
            (KIT_ROOT / "templates" / framework / "cookiecutter.json").read_text()
        )
        assert " ".join(map(str, LATENCY_BOUNDS)) in template["__prompts__"]["slo_latency_seconds"]
        for key in ("slo_availability", "slo_latency_target"):
            assert f"{MIN_OBJECTIVE} to below 100" in template["__prompts__"][key]
        # The defaults are valid: the first choice, and the objectives as given.
        assert template["ci_provider"][0] == "github"
        objectives = {key: template[key] for key in DEFAULTS if key.startswith("slo_")}
        assert objectives == {key: DEFAULTS[key] for key in objectives}
        assert len(objectives) == 3


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
        for hook in ("pre_gen_project.py", "post_gen_project.py"):
            assert (KIT_ROOT / entry["path"] / "hooks" / hook).is_file(), hook


def test_the_kit_holds_no_symbolic_links() -> None:
    # A checkout without them (Windows, core.symlinks=false) and the
    # repository's zip archive would hold small text files instead.
    tracked = subprocess.run(
        ["git", "ls-files", "-s"], cwd=KIT_ROOT, capture_output=True, text=True, check=True
    )
    links = [line.split("\t", 1)[1] for line in tracked.stdout.splitlines() if line[:6] == "120000"]
    assert not links, links
    on_disk = [
        path
        for path in KIT_ROOT.rglob("*")
        if path.is_symlink() and not {".venv", ".tools", ".git"} & set(path.parts)
    ]
    assert not on_disk, on_disk


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_repositorys_zip_archive_renders_a_complete_project(
    framework: str, tmp_path: Path
) -> None:
    # As a code host's download: one top-level folder, regular files only.
    archive = tmp_path / "kit.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("observability-kit-main/", "")
        for name in kit_files():
            zipped.write(KIT_ROOT / name, f"observability-kit-main/{name}")
    config = tmp_path / "cookiecutterrc.yaml"
    config.write_text(f"cookiecutters_dir: {tmp_path / 'unzipped'}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "--config-file",
            str(config),
            "--directory",
            f"templates/{framework}",
            "-o",
            str(tmp_path / "out"),
            str(archive),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / "example-service"
    fresh = render(framework, tmp_path / "fresh")
    assert sorted(p.relative_to(project) for p in project.rglob("*") if p.is_file()) == sorted(
        p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_projects_resilience_harness_is_the_kits_own(framework: str, tmp_path: Path) -> None:
    project = render(framework, tmp_path)
    harness = project / "tests" / "runtime" / "resilience"
    for module in ("process.py", "faultproxy.py", "postgres.py"):
        assert (harness / module).read_bytes() == (KIT_ROOT / "kit" / module).read_bytes(), module
    assert (harness / "test_resilience.py").is_file()
    receiver = project / "tests" / "runtime" / "receiver.py"
    assert receiver.read_bytes() == (KIT_ROOT / "kit" / "receiver.py").read_bytes()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_runtime_is_the_kits_own_and_names_its_build(framework: str, tmp_path: Path) -> None:
    project = render(framework, tmp_path, project_name="Shop API", package_name="shop")
    layers = json.loads((KIT_ROOT / "templates" / framework / "cookiecutter.json").read_text())
    runtime, copied = project / "shop" / "runtime", 0
    for layer in layers["_runtime"]:
        root = KIT_ROOT / "runtime" / layer
        for source in (p for p in root.rglob("*.py") if "__pycache__" not in p.parts):
            relative = source.relative_to(root)
            if relative.parts[0] == "tests":
                copy = project / "tests" / "runtime" / Path(*relative.parts[1:])
            else:
                copy = runtime / relative
            # Verbatim: the same bytes in every project, whatever its names.
            assert copy.read_bytes() == source.read_bytes(), relative
            copied += 1
    assert copied == len(list(runtime.rglob("*.py"))) - 1 + len(
        list((project / "tests" / "runtime").glob("*.py"))
    ) + len(list((project / "tests" / "runtime" / "resilience").glob("*.py"))) - sum(
        1 for copy in VERBATIM.values() if copy.startswith("tests/runtime/")
    )
    build: dict[str, object] = {}
    exec((runtime / "build.py").read_text(), build)
    assert build["DISTRIBUTION"] == "shop-api"
    assert build["LAYERS"] == tuple(layers["_runtime"])
    assert (
        build["KIT_VERSION"]
        == tomllib.loads((KIT_ROOT / "pyproject.toml").read_text())["project"]["version"]
    )
    assert f"Version {build['CONTRACT_VERSION']}." in (KIT_ROOT / "docs/contract.md").read_text()
    assert (project / "docs" / "contract.md").read_bytes() == (
        KIT_ROOT / "docs" / "contract.md"
    ).read_bytes()


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


def runtime_imports(project: Path, path: Path, package: str) -> set[tuple[str, str]]:
    """``(module, name)`` of each import of the runtime in ``path``; ``module`` is
    the part after ``<package>.runtime`` ("" for the runtime package itself)."""
    here = list(path.relative_to(project).parent.parts)
    runtime = f"{package}.runtime"
    found: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        base = here[: len(here) - node.level + 1] if node.level else []
        module = ".".join([*base, *filter(None, [node.module])])
        for alias in node.names:
            if module == runtime or module.startswith(runtime + "."):
                found.add((module.removeprefix(runtime).lstrip("."), alias.name))
            elif f"{module}.{alias.name}" == runtime:
                found.add(("", "*"))
    return found


def user_files(project: Path) -> list[Path]:
    """The project's Python files that are the user's: not the runtime and not its tests."""
    return [
        path
        for path in sorted(project.rglob("*.py"))
        if "runtime" not in path.relative_to(project).parts
    ]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_users_code_and_the_runtime_meet_only_at_its_surface(
    framework: str, tmp_path: Path
) -> None:
    project = render(framework, tmp_path)
    package = "example_service"
    surface = set(runtime_surface(project / package / "runtime" / "__init__.py"))
    # The runtime names its surface, and each name is importable from it.
    assert surface
    # The user's code imports the runtime's surface only, and the kit's settings
    # modules that configuration files read (gunicorn's, Django's).
    allowed_modules = {"", "gunicorn", "settings"}
    imports = {
        path.relative_to(project).as_posix(): runtime_imports(project, path, package)
        for path in user_files(project)
    }
    assert any(found for found in imports.values())
    for name, found in imports.items():
        for module, imported in found:
            assert module in allowed_modules, f"{name} imports {module}"
            if module == "":
                assert imported in surface | {"*"}, f"{name}: {imported}"
    # Nothing in the runtime imports the user's code.
    for path in (project / package / "runtime").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                depth = len(path.relative_to(project / package / "runtime").parts)
                assert node.level <= depth, f"{path}: from {'.' * node.level}{node.module}"
                assert not (node.module or "").startswith(package), path
            elif isinstance(node, ast.Import):
                assert not any(alias.name.startswith(package) for alias in node.names), path


def runtime_surface(init: Path) -> list[str]:
    """The names the runtime's ``__init__`` maps to its modules (``_WHERE``)."""
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_WHERE":
            return [key.value for key in node.value.keys]  # type: ignore[attr-defined]
    raise AssertionError(f"no _WHERE in {init}")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_no_render_holds_dead_code(framework: str, tmp_path: Path) -> None:
    project = render(framework, tmp_path)
    assert unused(project) == []
    # The check sees what it is for: a function nothing calls, in the
    # runtime and in the user's code alike.
    runtime = project / "example_service" / "runtime" / "pipeline.py"
    runtime.write_text(runtime.read_text() + "\n\ndef forgotten() -> None:\n    pass\n")
    models = next(project.rglob("models.py"))
    models.write_text(models.read_text() + "\n\nclass Leftover:\n    pass\n")
    assert [finding.split()[-1] for finding in unused(project)] == ["Leftover", "forgotten"]


# --- The lock file made at generation ---------------------------------------------


def test_without_uv_the_project_is_generated_with_advice_instead_of_a_lock(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    with environment(PATH=str(empty)):
        project = render("flask", tmp_path / "out", lock=True)
    err = capfd.readouterr().err
    assert "NOTE: uv is not installed, so no uv.lock was created." in err, err
    assert "`make install` (uv sync) creates uv.lock; commit it" in err
    assert not (project / "uv.lock").exists()
    # Everything else is there: the first `make install` locks and installs.
    assert (project / "pyproject.toml").is_file() and (project / "Makefile").is_file()
    assert (project / "example_service" / "runtime" / "build.py").is_file()


def test_offline_the_project_is_generated_with_the_reason_and_advice(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # uv offline with nothing cached cannot resolve; it says which package it lacks.
    with environment(UV_OFFLINE="1", UV_CACHE_DIR=str(tmp_path / "cache")):
        project = render("flask", tmp_path / "out", lock=True)
    err = capfd.readouterr().err
    assert "NOTE: no uv.lock was created (`uv lock` failed: error: " in err, err
    assert "not found in the cache" in err
    assert "`make install` (uv sync) creates uv.lock" in err
    assert not (project / "uv.lock").exists()
    assert (project / "pyproject.toml").is_file()


def test_the_readme_lists_every_question_with_its_rule() -> None:
    # "Generate a service": one row per question (or a row naming several),
    # with its default and its rule.
    readme = (KIT_ROOT / "README.md").read_text()
    section = readme.split("## Generate a service", 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| `")
    ]
    listed = {name: row for row in rows for name in re.findall(r"`(\w+)`", row[0])}
    for framework in FRAMEWORKS:
        template = json.loads(
            (KIT_ROOT / "templates" / framework / "cookiecutter.json").read_text()
        )
        questions = [key for key in template if not key.startswith("_")]
        assert set(questions) <= set(listed), f"{framework}: {set(questions) - set(listed)}"
        assert set(template["__prompts__"]) == set(questions), "every question has a prompt"
        for key in questions:
            default, rule = listed[key][1], listed[key][2]
            assert rule, f"{key} has no rule"
            value = template[key]
            if isinstance(value, list):  # a choice: the first is the default, each is explained
                assert default == f"`{value[0]}`", key
                assert all(f"`{choice}`" in rule for choice in value), key
            elif "{{" not in value and key.startswith(("ci_", "slo_")):
                assert default == f"`{value}`", key
