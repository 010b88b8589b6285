"""Every generated file, by its path in the kit."""

from __future__ import annotations

import json
from pathlib import Path

from .boards import database, overview, runtime, slo
from .catalogue import panel_table
from .output import to_json
from .panels import finish
from .project import EXAMPLE, project_files

BOARDS = {
    "service-overview": overview.build,
    "database": database.build,
    "runtime": runtime.build,
    "slo": slo.build,
}

KIT_ROOT = Path(__file__).resolve().parent.parent


def dashboards() -> dict[str, str]:
    """The dashboards' JSON by file name."""
    return {
        f"{name}.json": to_json(finish(json.loads(to_json(build().build()))))
        for name, build in BOARDS.items()
    }


def readme(boards: dict[str, str]) -> str:
    """The kit's README with its panel table filled in."""
    text = (KIT_ROOT / "README.md").read_text(encoding="utf-8")
    begin, end = "<!-- panels:begin -->\n", "<!-- panels:end -->"
    head, rest = text.split(begin, 1)
    table = panel_table([json.loads(board) for board in boards.values()])
    return head + begin + table + end + rest.split(end, 1)[1]


def generated_files() -> dict[str, str]:
    boards = dashboards()
    return {
        "README.md": readme(boards),
        **{f"grafana/dashboards/{name}": text for name, text in boards.items()},
        # The rules and runbooks as every project gets them, here for the default answers.
        **project_files(EXAMPLE),
    }
