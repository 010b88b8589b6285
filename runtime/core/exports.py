"""The runtime's surface, loaded when first used (PEP 562): gunicorn's master
imports the runtime for its configuration only, and must not load the web
framework (measured for FastAPI: 0.2 s of imports for the master's part,
against 2 s more with the application's, on a busy 2-core machine)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that finds each name of ``where`` in its module."""

    def attribute(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{where[name]}"), name)

    return attribute
