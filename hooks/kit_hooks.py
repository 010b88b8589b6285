"""What the three templates' hooks have in common: one source, used by all.

``validate`` runs before generation and stops it with a clear message;
``install_shared`` runs after it and adds the files every project of a given
kind shares (``templates/_shared/<layer>/``, rendered with the same context)
plus the kit's observability assets (``grafana/``, copied verbatim because
Grafana's and Prometheus' ``{{ ... }}`` templates must survive untouched).
"""

from __future__ import annotations

import keyword
import re
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

# Top-level modules the generated projects import; a package of the same name
# would shadow them.
DEPENDENCY_MODULES = frozenset(
    {
        "aiosqlite",
        "alembic",
        "asgi_correlation_id",
        "asgiref",
        "dj_database_url",
        "django",
        "fastapi",
        "flask",
        "gunicorn",
        "health_check",
        "httpx",
        "migrations",
        "mypy",
        "opentelemetry",
        "orjson",
        "prometheus_client",
        "psycopg",
        "psycopg_pool",
        "pydantic",
        "pytest",
        "pytest_django",
        "ruff",
        "sqlalchemy",
        "starlette",
        "structlog",
        "test",
        "tests",
        "uvicorn",
        "uvicorn_worker",
        "werkzeug",
    }
)

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


def validate(ctx: dict[str, Any]) -> int:
    found = problems(ctx)
    if not found:
        return 0
    print("ERROR: cannot generate the project:", file=sys.stderr)
    for problem in found:
        print(f"  - {problem}", file=sys.stderr)
    print("Nothing was generated. Run cookiecutter again with corrected answers.", file=sys.stderr)
    return 1


def _environment(root: Path) -> Environment:
    return Environment(
        loader=FileSystemLoader(str(root)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def install_shared(ctx: dict[str, Any], kit_root: Path, project_dir: Path) -> list[Path]:
    """Render the template's shared layers into ``project_dir``; return what was written.

    A shared file never replaces a template's own file: that would be two
    sources for one file, so it is an error in the kit.
    """
    written: list[Path] = []
    context = {"cookiecutter": ctx}
    for layer in ctx["_shared"]:
        layer_root = kit_root / "templates" / "_shared" / layer
        if not layer_root.is_dir():
            raise SystemExit(f"ERROR: the kit has no shared layer {layer!r} ({layer_root}).")
        env = _environment(layer_root)
        for source in sorted(p for p in layer_root.rglob("*") if p.is_file()):
            if "__pycache__" in source.parts:
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

    assets = kit_root / "grafana"
    if assets.is_dir():
        target = project_dir / "grafana"
        shutil.copytree(assets, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        written.append(target)
    return written
