"""Rendering the kit's templates, as users do, through cookiecutter's API."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cookiecutter.main import cookiecutter

from hooks.kit_hooks import SKIP_LOCK

from .pythons import newest_python

KIT_ROOT = Path(__file__).resolve().parents[1]

# The conformance suite runs once per entry: a framework joins the kit by
# being added here, and nowhere else.
FRAMEWORKS = ("fastapi", "flask", "django")

# SKIP_LOCK set, the post-generation hook creates no uv.lock (``lock`` there).
# The kit's tests set it for the whole session (tests/conftest.py): most renders
# are never installed, and those that are get their lock from `uv sync`.
__all__ = ["FRAMEWORKS", "KIT_ROOT", "SKIP_LOCK", "environment", "render"]


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """``os.environ`` with ``values`` (None removes a variable) for as long as the
    block runs: cookiecutter runs the hooks as subprocesses of this process."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def render(framework: str, output_dir: Path, *, lock: bool = False, **answers: Any) -> Path:
    """Render ``templates/<framework>`` with default answers plus ``answers``;
    with ``lock``, the post-generation hook also creates uv.lock, as for a user."""
    output_dir.mkdir(parents=True, exist_ok=True)
    settings: dict[str, str | None] = {SKIP_LOCK: None} if lock else {SKIP_LOCK: "1"}
    if lock:
        # uv resolves for requires-python with an interpreter installed here (never a download).
        settings |= {"UV_PYTHON": newest_python(), "UV_PYTHON_DOWNLOADS": "never"}
    with environment(**settings):
        project = cookiecutter(
            str(KIT_ROOT),
            directory=f"templates/{framework}",
            no_input=True,
            extra_context=answers,
            output_dir=str(output_dir),
            accept_hooks=True,
            default_config=True,  # the user's ~/.cookiecutterrc must not change what is tested
        )
    return Path(project)
