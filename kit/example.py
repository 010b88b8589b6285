"""Deleting the example resource the way the generated README says
("Where things go"), to prove that nothing else depends on it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path


def _drop_lines(path: Path, *patterns: str) -> None:
    text = path.read_text("utf-8")
    for pattern in patterns:
        text, count = re.subn(pattern, "", text, flags=re.MULTILINE)
        assert count, f"{path.name} has no {pattern!r}: the README's steps are out of date"
    path.write_text(text, "utf-8")


def delete_example(project: Path, framework: str) -> None:
    package = project / project.name.replace("-", "_")
    shutil.rmtree(project / "tests" / "runtime" / "resilience")
    (project / "tests" / "test_items.py").unlink()
    if framework == "django":
        shutil.rmtree(package / "items")
        _drop_lines(package / "settings.py", r'^    "[\w.]+\.items",\n')
        _drop_lines(
            package / "urls.py", r'^    path\("api/", include\("[\w.]+\.items\.urls"\)\),\n'
        )
        return
    (package / "api" / "items.py").unlink()
    (project / "migrations" / "versions" / "0001_create_items.py").unlink()
    wiring = package / ("main.py" if framework == "fastapi" else "app.py")
    _drop_lines(wiring, r"^from \.api import items\n", r"^.*items\.(router|bp)\)\n")
    _drop_lines(
        package / "models.py",
        r"^NAME_MAX_LENGTH = .*\n\n\n",
        r"^class Item\(Base\):\n(    .*\n|\n)*",
    )
    (package / "models.py").write_text((package / "models.py").read_text().rstrip() + "\n")
