"""What the three templates' hooks have in common: one source, used by all.

``pre_gen`` runs before generation and stops it with a clear message when
the answers cannot work; ``post_gen`` runs after it and adds:

- the runtime: ``runtime/<layer>/`` of the template's ``_runtime`` layers,
  copied verbatim into ``<package>/runtime/`` (their ``tests/`` into
  ``tests/runtime/``), with ``build.py`` naming what it was built from;
- the files every project of a given kind shares
  (``templates/_shared/<layer>/`` of its ``_shared`` layers and of the layers
  its ``ci_provider`` answer adds, rendered with the same context plus the
  template's ``Procfile`` commands);
- the kit's contract and observability assets, copied verbatim (Grafana's and
  Prometheus' ``{{ ... }}`` templates must survive untouched);
- the Prometheus rules and their tests (``grafana/rules/``) and the runbooks
  their alerts link (``docs/runbooks.md``), rendered for the project's scrape
  job, objectives and ``runbooks_url`` by the kit's ``monitoring`` package,
  the one source of the rules (and of the kit's own copy of them);
- the Kubernetes component's PrometheusRule and dashboard ConfigMaps, built
  from the project's ``grafana/``;
- ``uv.lock``, when uv is installed and can resolve (``lock``).
"""

from __future__ import annotations

import json
import keyword
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined


def _dependency_modules() -> frozenset[str]:
    """Top-level modules the generated projects' dependencies install (derived
    from real installations: kit/modules.py), and the project's own
    top-level directories: a package of the same name would shadow them."""
    lines = (Path(__file__).parent / "dependency_modules.txt").read_text("utf-8").splitlines()
    installed = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    return frozenset(installed | TOP_LEVEL)


# The project's own top-level directories.
TOP_LEVEL = frozenset({"deploy", "docs", "grafana", "migrations", "test", "tests"})


DEPENDENCY_MODULES = _dependency_modules()

SLUG_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
PACKAGE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
VERSION_RE = re.compile(r"^\d+(?:\.\d+){0,3}(?:(?:a|b|rc)\d+)?(?:\.post\d+)?(?:\.dev\d+)?$")
EMAIL_RE = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
MAX_SLUG = 40  # Kubernetes names add suffixes ("-migrate") and must stay within 63.

KIT_ROOT = Path(__file__).resolve().parent.parent

# What each answer to ``ci_provider`` adds to the project: shared layers
# (``templates/_shared/<layer>/``) with its pipeline and the configuration of
# its dependency-update bot. A provider not chosen leaves no file behind.
CI_LAYERS: dict[str, tuple[str, ...]] = {
    "github": ("ci-github",),  # GitHub Actions, Dependabot
    "gitlab": ("ci-gitlab", "renovate"),  # GitLab CI/CD, Renovate
    "none": ("renovate",),  # no pipeline; Renovate runs on any host
}
# Projects generated before the question existed had GitHub's pipeline.
CI_DEFAULT = "github"


def problems(ctx: dict[str, Any]) -> list[str]:
    """Every reason the answers cannot make a working project (empty if none)."""
    found: list[str] = []
    name = str(ctx.get("project_name", ""))
    slug = str(ctx.get("project_slug", ""))
    package = str(ctx.get("package_name", ""))
    version = str(ctx.get("version", ""))
    description = str(ctx.get("description", ""))
    email = str(ctx.get("author_email", ""))

    if not name.strip():
        found.append("project_name is empty.")
    elif len(name) > 80 or any(not ch.isprintable() for ch in name):
        found.append(f"project_name {name!r} must be at most 80 printable characters.")

    if not SLUG_RE.match(slug) or len(slug) > MAX_SLUG:
        found.append(
            f"project_slug {slug!r} must be lower-case letters, digits and single hyphens, "
            f"start with a letter and be at most {MAX_SLUG} characters (it names the "
            "distribution, the container and the Kubernetes objects)."
        )

    if not PACKAGE_RE.match(package) or len(package) > MAX_SLUG:
        found.append(
            f"package_name {package!r} is not a valid Python package name: use lower-case "
            "letters, digits and underscores, starting with a letter (e.g. 'my_service')."
        )
    elif keyword.iskeyword(package) or keyword.issoftkeyword(package):
        found.append(f"package_name {package!r} is a Python keyword.")
    elif package in sys.stdlib_module_names:
        found.append(
            f"package_name {package!r} would shadow the standard library module of that name."
        )
    elif package in DEPENDENCY_MODULES:
        found.append(f"package_name {package!r} would shadow a dependency of the project.")

    if not VERSION_RE.match(version):
        found.append(f"version {version!r} is not a PEP 440 version such as '0.1.0'.")

    if len(description) > 300 or any(ch in description for ch in "\r\n"):
        found.append("description must be a single line of at most 300 characters.")

    if email and not EMAIL_RE.match(email):
        found.append(f"author_email {email!r} is not an e-mail address.")

    ci_provider = str(ctx.get("ci_provider", CI_DEFAULT))
    if ci_provider not in CI_LAYERS:
        found.append(
            f"ci_provider {ci_provider!r} is not one of {', '.join(map(repr, CI_LAYERS))}."
        )
    found += _monitoring().slo.problems(ctx)
    found += _monitoring().runbooks.problems(ctx)
    return found


def _monitoring() -> Any:
    """The kit's ``monitoring`` package (plain Python and PyYAML, which cookiecutter has)."""
    kit_root = str(Path(__file__).resolve().parent.parent)
    if kit_root not in sys.path:
        sys.path.insert(0, kit_root)
    import monitoring.operator
    import monitoring.project
    import monitoring.runbooks
    import monitoring.slo

    return monitoring


def pre_gen(context: str) -> None:
    """The pre-generation hook: ``context`` is cookiecutter's, as JSON."""
    remove_rendered_hook()
    sys.exit(validate(json.loads(context)))


def post_gen(context: str) -> None:
    """The post-generation hook, run in the new project's directory."""
    remove_rendered_hook()
    ctx = json.loads(context)
    kit_root, project_dir = KIT_ROOT, Path.cwd()
    install_runtime(ctx, kit_root, project_dir)
    install_shared(ctx, kit_root, project_dir)
    install_monitoring(ctx, project_dir)
    lock(project_dir)


def remove_rendered_hook() -> None:
    """cookiecutter runs a hook from a copy it renders into the temporary
    directory and never removes (every answer, twice per project generated);
    the running hook removes its own copy. A hook run from anywhere else, the
    template's own file, is left alone."""
    script = Path(sys.argv[0]).resolve()
    temporary = Path(tempfile.gettempdir()).resolve()
    if script.parent == temporary and script.name.startswith("tmp") and script.suffix == ".py":
        script.unlink(missing_ok=True)


def validate(ctx: dict[str, Any]) -> int:
    found = problems(ctx)
    if not found:
        return 0
    print("ERROR: cannot generate the project:", file=sys.stderr)
    for problem in found:
        print(f"  - {problem}", file=sys.stderr)
    print("Nothing was generated. Run cookiecutter again with corrected answers.", file=sys.stderr)
    return 1


def read_procfile(project_dir: Path) -> dict[str, str]:
    """The project's Procfile as ``{process: command}`` (empty when it has none)."""
    path = project_dir / "Procfile"
    if not path.is_file():
        return {}
    processes = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


_OPERATORS = frozenset("();<>|&")


def exec_form(command: str) -> str:
    """A Procfile command as a JSON argument list (Dockerfile ``CMD``, YAML ``command``).

    The Dockerfile, compose file and manifests run the Procfile's commands
    without a shell, so a command that needs one is an error in the kit.
    """
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)
    if "$" in command or "`" in command or any(set(word) <= _OPERATORS for word in words):
        raise SystemExit(
            f"ERROR: the Procfile command {command!r} needs a shell; the container runs it "
            "in exec form, so keep it to plain arguments (settings belong in the environment)."
        )
    return json.dumps(shlex.split(command))


def _environment(root: Path) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(root)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["exec_form"] = exec_form
    return env


# Tool caches a developer's checkout may hold inside a layer; never project files.
CACHES = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}

# Kit files every project carries unchanged, so that the project's copy and the
# kit's are one source: the contract, the observability assets (Grafana's and
# Prometheus' own {{ ... }} must survive untouched) but their rules, which are
# each project's own (install_monitoring), and the harness of the project's own
# resilience tests and the receiver of its runtime's client tests, which the
# kit's tests use too.
VERBATIM = {
    "docs/contract.md": "docs/contract.md",
    "grafana": "grafana",
    "kit/process.py": "tests/runtime/resilience/process.py",
    "kit/faultproxy.py": "tests/runtime/resilience/faultproxy.py",
    "kit/postgres.py": "tests/runtime/resilience/postgres.py",
    "kit/receiver.py": "tests/runtime/receiver.py",
}

BUILD = '''"""What this runtime was assembled from: written by the kit when the project
was generated or updated, never by hand."""

DISTRIBUTION = {distribution}  # the project's name in pyproject.toml
KIT_VERSION = {kit_version}
CONTRACT_VERSION = {contract_version}  # docs/contract.md
LAYERS = ({layers})
'''


def kit_version(kit_root: Path) -> str:
    project = tomllib.loads((kit_root / "pyproject.toml").read_text("utf-8"))["project"]
    return str(project["version"])


def contract_version(kit_root: Path) -> str:
    text = (kit_root / "docs" / "contract.md").read_text("utf-8")
    found = re.search(r"^Version (\S+)\.$", text, re.MULTILINE)
    if found is None:
        raise SystemExit("ERROR: docs/contract.md names no version ('Version N.').")
    return found.group(1)


def install_runtime(ctx: dict[str, Any], kit_root: Path, project_dir: Path) -> list[Path]:
    """Copy the template's runtime layers into ``<package>/runtime/`` and their
    tests into ``tests/runtime/``; return what was written."""
    runtime = project_dir / ctx["package_name"] / "runtime"
    written: list[Path] = []
    for layer in ctx["_runtime"]:
        layer_root = kit_root / "runtime" / layer
        if not layer_root.is_dir():
            raise SystemExit(f"ERROR: the kit has no runtime layer {layer!r} ({layer_root}).")
        for source in sorted(p for p in layer_root.rglob("*") if p.is_file()):
            relative = source.relative_to(layer_root)
            if CACHES & set(relative.parts):
                continue
            if relative.parts[0] == "tests":
                target = project_dir / "tests" / "runtime" / Path(*relative.parts[1:])
            else:
                target = runtime / relative
            if target.exists():
                raise SystemExit(f"ERROR: two runtime layers provide {target}.")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            written.append(target)
    build = runtime / "build.py"
    build.write_text(
        # JSON strings are Python strings, quoted as ruff's formatter wants them.
        BUILD.format(
            distribution=json.dumps(ctx["project_slug"]),
            kit_version=json.dumps(kit_version(kit_root)),
            contract_version=json.dumps(contract_version(kit_root)),
            layers=", ".join(json.dumps(layer) for layer in ctx["_runtime"]),
        ),
        encoding="utf-8",
    )
    return [*written, build]


def shared_layers(ctx: dict[str, Any]) -> list[str]:
    """The template's shared layers, then those its CI provider adds."""
    return [*ctx["_shared"], *CI_LAYERS[ctx.get("ci_provider", CI_DEFAULT)]]


def install_shared(ctx: dict[str, Any], kit_root: Path, project_dir: Path) -> list[Path]:
    """Render the template's shared layers into ``project_dir``; return what was written.

    A shared file never replaces a template's own file: that would be two
    sources for one file, so it is an error in the kit.
    """
    written: list[Path] = []
    # The template's own Procfile is the one source of the commands that the
    # container, the local stack and the manifests run.
    context = {
        "cookiecutter": ctx,
        "procfile": read_procfile(project_dir),
        "kit_version": kit_version(kit_root),
        "contract_version": contract_version(kit_root),
    }
    for layer in shared_layers(ctx):
        layer_root = kit_root / "templates" / "_shared" / layer
        if not layer_root.is_dir():
            raise SystemExit(f"ERROR: the kit has no shared layer {layer!r} ({layer_root}).")
        env = _environment(layer_root)
        for source in sorted(p for p in layer_root.rglob("*") if p.is_file()):
            if CACHES & set(source.parts):
                continue
            relative = source.relative_to(layer_root).as_posix()
            target = project_dir / env.from_string(relative).render(context)
            if target.exists():
                raise SystemExit(
                    f"ERROR: shared layer {layer!r} and the template both provide {target}."
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(env.get_template(relative).render(context), encoding="utf-8")
            if source.stat().st_mode & stat.S_IXUSR:
                target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            written.append(target)

    for kit_path, destination in VERBATIM.items():
        origin, target = kit_root / kit_path, project_dir / destination
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=_not_verbatim(origin))
        elif origin.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, target)
        else:
            continue
        written.append(target)
    return written


# Rendered for each project instead (install_monitoring): the kit's copy is the
# default answers' rendering.
RENDERED = {"grafana": "rules"}


def _not_verbatim(root: Path) -> Callable[[str, list[str]], set[str]]:
    skipped = RENDERED.get(root.name)

    def ignore(directory: str, names: list[str]) -> set[str]:
        found = {n for n in names if n == "__pycache__" or n.endswith(".pyc")}
        if skipped and Path(directory) == root:
            found |= {skipped} & set(names)
        return found

    return ignore


def install_monitoring(ctx: dict[str, Any], project_dir: Path) -> list[Path]:
    """Write the project's ``grafana/rules/`` (its scrape job, the slug, and its
    objectives, the ``slo_*`` answers or the kit's defaults) and ``docs/runbooks.md``,
    then the Prometheus Operator's objects built from its ``grafana/`` (when it has
    the Kubernetes component); return what was written."""
    monitoring = _monitoring()
    files = monitoring.project.project_files(ctx)
    written = _write(project_dir, files)
    if (project_dir / monitoring.operator.COMPONENT).is_dir():
        operator = monitoring.operator.operator_files(ctx, project_dir / "grafana")
        written += _write(project_dir, operator)
    return written


def _write(project_dir: Path, files: dict[str, str]) -> list[Path]:
    written = []
    for relative, text in files.items():
        target = project_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


# Seconds ``uv lock`` may take at generation; past it the project is left without a lock.
LOCK_TIMEOUT = 300
# Set by the kit's own tests where they install the project anyway (``uv sync`` locks).
SKIP_LOCK = "KIT_SKIP_LOCK"
LOCK_ADVICE = (
    "The project works without it: `make install` (uv sync) creates uv.lock; commit it, "
    "since the image build and CI install exactly what it pins."
)


def lock(project_dir: Path) -> bool:
    """Create ``uv.lock`` with ``uv lock``; say why not when uv is missing or cannot
    resolve (offline, say). Generation succeeds either way; True when locked."""
    if os.environ.get(SKIP_LOCK):
        return False
    uv = shutil.which("uv")
    if uv is None:
        print(
            f"NOTE: uv is not installed, so no uv.lock was created. {LOCK_ADVICE}", file=sys.stderr
        )
        return False
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    try:
        result = subprocess.run(
            [uv, "lock", "--quiet", "--color", "never"],
            cwd=project_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=LOCK_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        reason = f"`uv lock` took more than {LOCK_TIMEOUT} s"
    else:
        if result.returncode == 0:
            print("Locked the dependencies in uv.lock (uv lock); commit it with the project.")
            return True
        # uv says what failed on its "error:" line, and why on the first "cause:" lines.
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        start = next((n for n, line in enumerate(lines) if line.startswith("error:")), 0)
        reason = "`uv lock` failed: " + " ".join(lines[start : start + 3])[:400]
    print(f"NOTE: no uv.lock was created ({reason}). {LOCK_ADVICE}", file=sys.stderr)
    return False
