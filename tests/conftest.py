"""Session fixtures: each framework is rendered, installed and booted once, then shared.

Tests that need a service of their own (signals, other settings) call
``boot`` with the shared installed project; nothing is installed twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from kit import update
from kit.otlp import OtlpSink
from kit.postgres import PROGRAMS, PostgresServer
from kit.project import Project, Service
from kit.render import FRAMEWORKS, SKIP_LOCK
from kit.system import require
from kit.update import KitRevisions

# Exported spans arrive within a fraction of a second instead of the SDK's 5 s.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}

Boot = Callable[..., Service]

# Renders make no uv.lock at generation, in this process and in the cookiecutter
# and cruft processes it starts: the projects the tests install get theirs from
# `uv sync`. Tests of the lock itself render with ``render(..., lock=True)``.
os.environ.setdefault(SKIP_LOCK, "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # With pytest-xdist's --dist loadgroup, one worker takes all of a
    # framework's tests, so each framework is rendered and installed once.
    # The render matrix (tests/test_matrix.py) installs its own environment per
    # framework: a group of its own, which another worker may take meanwhile.
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "framework" in params:
            matrix = "matrix-" if item.get_closest_marker("matrix") else ""
            item.add_marker(pytest.mark.xdist_group(matrix + params["framework"]))


@pytest.fixture(scope="session", params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def kit_revisions(tmp_path_factory: pytest.TempPathFactory) -> KitRevisions:
    """A git repository of the kit: an older kit, then this one (kit/update.py)."""
    return update.kit_revisions(tmp_path_factory.mktemp("kit-revisions"))


@pytest.fixture(scope="session")
def project(
    framework: str, kit_revisions: KitRevisions, tmp_path_factory: pytest.TempPathFactory
) -> Project:
    """The framework's template with default answers, as a team has it: generated
    from an older kit, changed (its own route, an edit of the example), updated
    to this kit with cruft, and installed with uv. Every tier tests this project;
    tests/test_update.py proves the update touched only the kit's files."""
    path = update.create(kit_revisions, framework, tmp_path_factory.mktemp(f"{framework}-render"))
    edits = update.edit(path, framework)
    report = update.update(path, kit_revisions)
    installed = Project(framework, path, user_edits=edits, update_report=report)
    installed.install()
    return installed


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
