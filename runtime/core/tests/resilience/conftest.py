"""Fixtures of the resilience tests: a private PostgreSQL, reached through a
fault-injecting proxy, and this project's web process started from its Procfile.

``process.py``, ``faultproxy.py`` and ``postgres.py`` are verbatim copies of the
kit's own test harness. Without the PostgreSQL server programs (``initdb``,
``pg_ctl``, ``postgres``) these tests are skipped, except under ``CI=true``,
where that is a failure: CI must run them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .faultproxy import FaultProxy
from .postgres import PostgresServer, PostgresUnavailable
from .process import Service, procfile, start_web

ROOT = Path(__file__).resolve().parents[3]  # the project
# Settings of the test runner that must not reach the service under test.
_NOT_INHERITED = ("DATABASE_URL", "PORT", "WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR")


@dataclass
class Deployed:
    service: Service
    proxy: FaultProxy
    database: str


Deploy = Callable[..., Deployed]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except PostgresUnavailable as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{error}; CI must run the resilience tests")
        pytest.skip(str(error))
    yield server
    server.close()


def environment(**settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _NOT_INHERITED}
    # The virtualenv running the tests holds gunicorn and the release tools.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"OTEL_TRACES_EXPORTER": "none", "DRAIN_DELAY": "0.5", **settings})
    return env


@pytest.fixture
def deploy(postgres: PostgresServer, tmp_path: Path) -> Iterator[Deploy]:
    """Migrate a new database and start the web process on it, behind a proxy."""
    started: list[Deployed] = []

    def start(**settings: str) -> Deployed:
        database = f"resilience_{uuid.uuid4().hex[:12]}"
        # Migrated directly: every connection through the proxy is the service's.
        subprocess.run(
            procfile(ROOT)["release"],
            shell=True,
            cwd=ROOT,
            env=environment(DATABASE_URL=postgres.create_database(database)),
            check=True,
            capture_output=True,
        )
        proxy = FaultProxy("127.0.0.1", postgres.port)
        env = environment(DATABASE_URL=postgres.url(database, port=proxy.port), **settings)
        service = start_web(ROOT, tmp_path / f"web-{len(started)}", env)
        started.append(Deployed(service, proxy, database))
        return started[-1]

    yield start
    for deployed in started:
        deployed.service.kill()
        deployed.proxy.close()
