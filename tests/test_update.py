"""A service generated from an older kit and changed by its team takes this kit
with one command, ``cruft update`` (README.md, "Update a generated service"),
and the update touches the kit's files only.

The ``project`` every tier tests is that updated service (tests/conftest.py,
kit/update.py): its own tests, the conformance suite, the resilience,
dashboard and deploy tiers all run on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.project import Project
from kit.render import KIT_ROOT, render
from kit.update import OLDER_KIT_VERSION, RETIRED_MODULE, git

pytestmark = pytest.mark.boot


def files(root: Path) -> dict[str, bytes]:
    """The project's files (what git would commit, in an updated project's
    repository), but the lock file the tests' install made and cruft's state."""
    if (root / ".git").is_dir():
        names = git(root, "ls-files", "--cached", "--others", "--exclude-standard").splitlines()
    else:
        names = [path.relative_to(root).as_posix() for path in root.rglob("*")]
    return {
        name: (root / name).read_bytes()
        for name in names
        if (root / name).is_file() and Path(name).name not in {"uv.lock", ".cruft.json"}
    }


def test_the_update_left_no_conflict(project: Project) -> None:
    assert "Good work" in project.update_report, project.update_report
    found = files(project.path)
    assert not [name for name in found if name.endswith((".rej", ".orig"))]
    assert not [name for name, content in found.items() if b"\n<<<<<<< " in content]


def test_the_update_changed_the_kits_files_and_not_the_teams(
    project: Project, tmp_path: Path
) -> None:
    changed = git(project.path, "diff", "--name-only", "HEAD").splitlines()
    changed += git(project.path, "diff", "--name-only", "--cached", "HEAD").splitlines()
    edited = {edit.path for edit in project.user_edits}
    assert changed, "the update changed nothing: the older kit is not older"
    assert not edited & set(changed), edited & set(changed)
    # It took everything this kit changed: the runtime (every module of the
    # older kit had an extra line), the contract, a dashboard and the ConfigMap
    # built from it, the runbooks, the Dockerfile.
    runtime = [name for name in changed if "/runtime/" in f"/{name}"]
    assert len(runtime) >= 20, changed
    assert {
        "docs/contract.md",
        "Dockerfile",
        "grafana/dashboards/runtime.json",
        "deploy/k8s/components/prometheus-operator/dashboards.yaml",
        "docs/runbooks.md",
    } <= set(changed)
    retired = f"{project.package}/runtime/{Path(RETIRED_MODULE).name}"
    assert retired in changed and not (project.path / retired).exists()
    build = (project.path / project.package / "runtime" / "build.py").read_text()
    assert OLDER_KIT_VERSION not in build


def test_the_updated_service_is_this_kits_render_plus_the_teams_changes(
    project: Project, tmp_path: Path
) -> None:
    fresh = files(render(project.framework, tmp_path))
    updated = files(project.path)
    edits = {edit.path: edit.content.encode() for edit in project.user_edits}
    for name, content in fresh.items():
        expected = edits.get(name, content)
        assert updated.get(name) == expected, f"{name} is not this kit's (nor the team's)"
    assert set(updated) - set(fresh) == set(edits) - set(fresh)
    state = json.loads((project.path / ".cruft.json").read_text())
    assert state["directory"] == f"templates/{project.framework}"
    assert state["commit"] == git(Path(state["template"]), "rev-parse", "HEAD")


def test_the_kit_names_the_update_command_in_its_readmes(project: Project) -> None:
    for readme in (KIT_ROOT / "README.md", project.path / "README.md"):
        assert "cruft update" in readme.read_text(), readme
