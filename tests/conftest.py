"""Session fixtures: each framework is rendered and installed once for the whole
run, and booted once per xdist worker, then shared.

Tests that need a service of their own (signals, other settings) call
``boot`` with the shared installed project; nothing is installed twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from kit import update
from kit.otlp import OtlpSink
from kit.postgres import PROGRAMS, PostgresServer
from kit.project import MYPY_CACHES, Project, Service
from kit.render import FRAMEWORKS, SKIP_LOCK
from kit.system import require

# Exported spans arrive within a fraction of a second instead of the SDK's 5 s.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}

Boot = Callable[..., Service]

# Renders make no uv.lock at generation, in this process and in the cookiecutter
# and cruft processes it starts: the projects the tests install get theirs from
# `uv sync`. Tests of the lock itself render with ``render(..., lock=True)``.
os.environ.setdefault(SKIP_LOCK, "1")


# First: xdist reads the groups in a hook of its own, registered before this file.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The render matrix (tests/test_matrix.py) installs an environment per
    # framework and shares one mypy cache: with pytest-xdist's --dist
    # loadgroup, one worker takes all of a framework's matrix tests. The other
    # tests spread over every worker; the projects they share are installed
    # once for all workers (``project``).
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "framework" in params and item.get_closest_marker("matrix"):
            item.add_marker(pytest.mark.xdist_group("matrix-" + params["framework"]))


class _LongestFirst:
    """The longest tests first: a generated project's own checks (minutes each)
    and the rules' promtool tests. Started last, they ran alone at the end of
    the run. Last among the hooks, after pytest groups the tests by framework."""

    FILES = frozenset(("test_generated_checks.py", "test_rules.py"))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        items.sort(key=lambda item: item.path.name not in self.FILES)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_LongestFirst())


@pytest.fixture(scope="session", autouse=True)
def mypy_caches(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One mypy cache per framework for all xdist workers (Project.env)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    os.environ.setdefault(MYPY_CACHES, str(shared / "mypy-caches"))


@pytest.fixture(scope="session", params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Held by one process at a time: the first xdist worker to get here does the
    work, the others wait for it and take its result."""
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def project(framework: str, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The framework's template with default answers, as a team has it: generated
    from an older kit, changed (its own route, an edit of the example), updated
    to this kit with cruft (kit/update.py), and installed with uv. Every tier
    tests this project, made once for all xdist workers (the workers' base
    directories share a parent); tests/test_update.py proves the update touched
    only the kit's files."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / f"{framework}-project"
    made = root / "made.json"
    with _exclusive(shared / f"{framework}-project.lock"):
        if not made.exists():
            revisions = update.kit_revisions(root / "kit-revisions")
            path = update.create(revisions, framework, root / "render")
            edits = update.edit(path, framework)
            report = update.update(path, revisions)
            Project(framework, path).install()
            record = {"path": str(path), "edits": [asdict(e) for e in edits], "report": report}
            made.write_text(json.dumps(record))
    record = json.loads(made.read_text())
    return Project(
        framework,
        Path(record["path"]),
        user_edits=[update.UserEdit(**edit) for edit in record["edits"]],
        update_report=record["report"],
    )


@pytest.fixture(scope="session")
def boot(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Boot]:
    """Start the project's web process with its own database, OTLP sink and logs.

    ``boot(**env)`` runs the release process, then the web process; every
    service it started is stopped at the end of the session.
    """
    started: list[tuple[Service, OtlpSink]] = []

    def start(release: bool = True, **env: str) -> Service:
        workdir = tmp_path_factory.mktemp(f"{project.framework}-service")
        sink = OtlpSink()
        settings = {
            "DATABASE_URL": f"sqlite:///{workdir / 'service.sqlite3'}",
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
            **FAST_EXPORT,
            **env,
        }
        if release:
            project.release(**settings)
        service = project.start(workdir, **settings)
        service.sink = sink
        started.append((service, sink))
        return service

    yield start
    for service, sink in started:
        service.kill()
        sink.close()


@pytest.fixture(scope="session")
def service(boot: Boot) -> Service:
    """The framework's service with default settings, shared by read-only tests."""
    return boot()


@pytest.fixture
def sink(service: Service) -> OtlpSink:
    assert service.sink is not None
    return service.sink


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server; each test that uses it makes its own database."""
    require(*PROGRAMS)  # a skip here, a failure in CI, without PostgreSQL's programs
    server = PostgresServer()
    try:
        yield server
    finally:
        server.close()
