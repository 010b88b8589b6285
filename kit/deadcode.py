"""Module-level functions and classes that nothing in a project names.

Written here because vulture, the usual finder, does not count a dotted path
in a string (Django's ``MIDDLEWARE``, gunicorn's ``worker_class``) as a use,
and also reports the attributes and variables that frameworks read: on a
rendered Django project it reported 40 findings, two of them dead code.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

# Found and called by the framework itself, never named: Django's app configs
# and migrations.
FRAMEWORK_BASES = frozenset({"AppConfig", "Migration"})
# Directories whose code only tools call: tests (pytest), migrations.
NOT_SERVICE_CODE = frozenset({"tests", "migrations", "versions", ".venv"})
# A string that names code: "name", "package.module.Name", "package.main:app".
_PATH = re.compile(r"\.?[A-Za-z_][\w.]*(?::[A-Za-z_]\w*)?")
# Decorators that do not register what they decorate.
_WRAPPERS = frozenset({"cache", "lru_cache", "cached_property", "wraps", "contextmanager"})


def service_files(project: Path) -> Iterator[Path]:
    for path in sorted(project.rglob("*.py")):
        if not NOT_SERVICE_CODE & set(path.relative_to(project).parts):
            yield path


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        return _name(node.func)
    return node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")


def definitions(
    tree: ast.Module,
) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    """The module's functions and classes, but those the framework finds itself:
    registered by a decorator (routes), or of a class it discovers."""
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if {_name(decorator) for decorator in node.decorator_list} - _WRAPPERS:
            continue
        if isinstance(node, ast.ClassDef) and {_name(base) for base in node.bases} & (
            FRAMEWORK_BASES
        ):
            continue
        yield node


def names_used(tree: ast.Module) -> Iterator[str]:
    """Every name the module uses: in code, in imports, and in strings (dotted
    paths, ``__all__``), but not the names it defines."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store):
            yield node.id
        elif isinstance(node, ast.Attribute):
            yield node.attr
        elif isinstance(node, ast.alias):
            yield node.name.rsplit(".", 1)[-1]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield from _path_parts(node.value)


def _path_parts(text: str) -> list[str]:
    if not _PATH.fullmatch(text):
        return []
    return [part for part in re.split(r"[.:]", text) if part]


def unused(project: Path) -> list[str]:
    """``path:line name`` of each module-level function or class of the
    service's code (not its tests or migrations) that nothing else names."""
    trees = {path: ast.parse(path.read_text("utf-8")) for path in service_files(project)}
    used: set[str] = set()
    for tree in trees.values():
        used.update(names_used(tree))
    # Whatever the tests and migrations name is used by them, but they do not
    # keep service code alive: only service code counts.
    return [
        f"{path.relative_to(project)}:{node.lineno} {node.name}"
        for path, tree in trees.items()
        for node in definitions(tree)
        if node.name not in used
    ]
