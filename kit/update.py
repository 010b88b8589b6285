"""A service generated from an older kit, changed by its team, then updated to
this kit with cruft, as a user updates one (README.md, "Update a generated
service").

``KitRevisions`` is a git repository of the kit with two commits: the older
kit, then this one. The older kit differs from this one where kits change
between releases: its version and its contract's, every runtime module (a
line each), a runtime module this kit no longer has, a dashboard (and so the
Kubernetes ConfigMap built from it), the runbooks and the Dockerfile.
``USER_EDITS`` are what a team does to its own code: a route of
its own, wired in, with a test, and an edit of the example.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .render import KIT_ROOT

OLDER_KIT_VERSION = "0.0.1"
OLDER_CONTRACT_VERSION = "1"
# A runtime module the older kit had and this one does not: the update removes it.
RETIRED_MODULE = "runtime/core/retired.py"


def kit_files(root: Path = KIT_ROOT) -> list[str]:
    """The kit's files as a clone has them: tracked, or new and not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return [name for name in listed.stdout.splitlines() if (root / name).is_file()]


def git(cwd: Path, *args: str) -> str:
    environ = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Kit Tests",
        "GIT_AUTHOR_EMAIL": "kit@example.com",
        "GIT_COMMITTER_NAME": "Kit Tests",
        "GIT_COMMITTER_EMAIL": "kit@example.com",
    }
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"git {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout.strip()


def commit_all(cwd: Path, message: str) -> str:
    git(cwd, "add", "--all")
    git(cwd, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", message)
    return git(cwd, "rev-parse", "HEAD")


@dataclass
class KitRevisions:
    repository: Path
    older: str
    newer: str


def kit_revisions(repository: Path) -> KitRevisions:
    """This kit's files in ``repository``, committed after an older kit's."""
    for name in kit_files():
        target = repository / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(KIT_ROOT / name, target)
    git(repository, "init", "--quiet", "--initial-branch=main")
    this_kit = {name: (repository / name).read_bytes() for name in kit_files(repository)}
    _age(repository)
    older = commit_all(repository, "the older kit")
    for name, content in this_kit.items():
        (repository / name).write_bytes(content)
    (repository / RETIRED_MODULE).unlink()
    newer = commit_all(repository, "this kit")
    return KitRevisions(repository, older, newer)


def _age(repository: Path) -> None:
    """Turn the kit in ``repository`` into the older kit."""

    def age(name: str, old: str, new: str) -> None:
        path = repository / name
        text = path.read_text("utf-8")
        assert new in text, f"{name} no longer holds {new!r}"
        path.write_text(text.replace(new, old, 1), "utf-8")

    version = re.search(r'^version = "(.+)"$', (repository / "pyproject.toml").read_text(), re.M)
    assert version is not None
    age("pyproject.toml", f'version = "{OLDER_KIT_VERSION}"', version.group(0))
    contract = re.search(r"^Version (\S+)\.$", (repository / "docs/contract.md").read_text(), re.M)
    assert contract is not None
    age("docs/contract.md", f"Version {OLDER_CONTRACT_VERSION}.", contract.group(0))
    for module in sorted((repository / "runtime").rglob("*.py")):
        text = module.read_text("utf-8")
        module.write_text(f"# Written by the kit {OLDER_KIT_VERSION}.\n{text}", "utf-8")
    age("templates/_shared/deploy/Dockerfile", "# The older kit's image.\n", "# syntax=")
    dashboard = "grafana/dashboards/runtime.json"
    title = json.loads((repository / dashboard).read_text())["title"]
    age(dashboard, f'"title": "{title} (older kit)"', f'"title": "{title}"')
    age("monitoring/runbooks.py", '"# Runbooks (older kit): ', '"# Runbooks: ')
    retired = repository / RETIRED_MODULE
    retired.write_text('"""A module the kit no longer needs."""\n', "utf-8")


@dataclass
class UserEdit:
    """A file of the user's, as the team leaves it."""

    path: str
    content: str


def cruft(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cruft", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"cruft {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def create(revisions: KitRevisions, framework: str, output: Path) -> Path:
    """``cruft create`` at the older kit, with default answers, as a git repository."""
    output.mkdir(parents=True, exist_ok=True)
    cruft(
        "create",
        str(revisions.repository),
        "--directory",
        f"templates/{framework}",
        "--checkout",
        revisions.older,
        "--no-input",
        "--output-dir",
        str(output),
        cwd=output,
    )
    project = output / "example-service"
    git(project, "init", "--quiet", "--initial-branch=main")
    commit_all(project, "Generated")
    return project


def edit(project: Path, framework: str) -> list[UserEdit]:
    """What a team does to its own code after generation; committed."""
    edits = [UserEdit(path, content) for path, content in USER_EDITS[framework].items()]
    for change in edits:
        path = project / change.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(change.content, "utf-8")
    example = project / EXAMPLES[framework]
    text = example.read_text("utf-8")
    text = text.replace("LIST_LIMIT = 100", "LIST_LIMIT = 100  # our clients page by 100", 1)
    example.write_text(text, "utf-8")
    edits.append(UserEdit(EXAMPLES[framework], text))
    commit_all(project, "Our own route, and a note on the example")
    return edits


def update(project: Path, revisions: KitRevisions) -> str:
    """``cruft update`` to this kit; returns cruft's report."""
    result = cruft("update", "--skip-apply-ask", "--checkout", revisions.newer, cwd=project)
    return result.stdout + result.stderr


EXAMPLES = {
    "fastapi": "example_service/api/items.py",
    "flask": "example_service/api/items.py",
    "django": "example_service/items/views.py",
}

_GREETING_TEST = '''"""Our own route."""

from __future__ import annotations

from {client_module} import {client_type}


def test_greets(client: {client_type}) -> None:
    response = client.get("/api/greetings")
    assert response.status_code == 200
    assert response.{json}() == {{"greeting": "hello"}}
'''

USER_EDITS: dict[str, dict[str, str]] = {
    "fastapi": {
        "example_service/api/greetings.py": '''"""A route of our own."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/greetings", tags=["greetings"])


@router.get("")
async def greet() -> dict[str, str]:
    return {"greeting": "hello"}
''',
        "example_service/main.py": '''"""The application: our routers, on the kit's runtime."""

from .api import greetings, items
from .runtime import create_app

app = create_app(title="Example Service")
app.include_router(items.router)
app.include_router(greetings.router)
''',
        "tests/test_greetings.py": _GREETING_TEST.format(
            client_module="fastapi.testclient", client_type="TestClient", json="json"
        ),
    },
    "flask": {
        "example_service/api/greetings.py": '''"""A route of our own."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("greetings", __name__, url_prefix="/api/greetings")


@bp.get("")
def greet() -> dict[str, str]:
    return {"greeting": "hello"}
''',
        "example_service/app.py": '''"""The app factory: our blueprints, on the kit's runtime."""

from __future__ import annotations

from flask import Flask

from . import runtime
from .api import greetings, items


def create_app() -> Flask:
    app = Flask(__name__)
    runtime.init_app(app)
    app.register_blueprint(items.bp)
    app.register_blueprint(greetings.bp)
    return app
''',
        "tests/test_greetings.py": _GREETING_TEST.format(
            client_module="flask.testing", client_type="FlaskClient", json="get_json"
        ),
    },
    "django": {
        "example_service/greetings.py": '''"""A view of our own."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse


def greet(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"greeting": "hello"})
''',
        "example_service/urls.py": '''"""Our URLs; the runtime answers the probes before routing."""

from django.urls import include, path

from . import greetings

urlpatterns = [
    path("", include("example_service.runtime.urls")),
    path("api/", include("example_service.items.urls")),
    path("api/greetings", greetings.greet),
]
''',
        "tests/test_greetings.py": _GREETING_TEST.format(
            client_module="django.test", client_type="Client", json="json"
        ),
    },
}
