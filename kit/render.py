"""Rendering the kit's templates, as users do, through cookiecutter's API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cookiecutter.main import cookiecutter

KIT_ROOT = Path(__file__).resolve().parents[1]

# The conformance suite runs once per entry: a framework joins the kit by
# being added here, and nowhere else.
FRAMEWORKS = ("fastapi", "flask", "django")


def render(framework: str, output_dir: Path, **answers: Any) -> Path:
    """Render ``templates/<framework>`` with default answers plus ``answers``."""
    output_dir.mkdir(parents=True, exist_ok=True)
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
