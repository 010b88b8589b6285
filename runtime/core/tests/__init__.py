"""The kit's tests of its runtime (``<package>/runtime/``), and of this service
under faults (``resilience/``). They come with the runtime, from the kit."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def runtime_module(name: str) -> ModuleType:
    """``<package>.runtime.<name>`` of this project, whatever the package is called."""
    (package,) = (path.name for path in ROOT.iterdir() if (path / "runtime" / "build.py").is_file())
    return importlib.import_module(f"{package}.runtime.{name}")
