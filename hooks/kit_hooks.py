"""What the three templates' hooks have in common: one source, used by all.

``pre_gen`` runs before generation and stops it with a clear message when
the answers cannot work; ``post_gen`` runs after it and adds:

- the runtime: ``runtime/<layer>/`` of the template's ``_runtime`` layers,
  copied verbatim into ``<package>/runtime/`` (their ``tests/`` into
  ``tests/runtime/``), with ``build.py`` naming what it was built from;
- the files every project of a given kind shares
  (``templates/_shared/<layer>/`` of its ``_shared`` layers, rendered with the
  same context plus the template's ``Procfile`` commands);
- the kit's contract and observability assets, copied verbatim (Grafana's and
  Prometheus' ``{{ ... }}`` templates must survive untouched).
"""

from __future__ import annotations

import json
import keyword
import re
import shlex
import shutil
import stat
import sys
import tomllib
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
    return found


def pre_gen(context: str) -> None:
    """The pre-generation hook: ``context`` is cookiecutter's, as JSON."""
    sys.exit(validate(json.loads(context)))


def post_gen(context: str) -> None:
    """The post-generation hook, run in the new project's directory."""
    ctx = json.loads(context)
    kit_root, project_dir = Path(__file__).resolve().parent.parent, Path.cwd()
    install_runtime(ctx, kit_root, project_dir)
    install_shared(ctx, kit_root, project_dir)


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
# Prometheus' own {{ ... }} must survive untouched), and the harness of the
# project's own resilience tests and the receiver of its runtime's client
# tests, which the kit's tests use too.
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
    for layer in ctx["_shared"]:
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

    for source, destination in VERBATIM.items():
        origin, target = kit_root / source, project_dir / destination
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif origin.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, target)
        else:
            continue
        written.append(target)
    return written
