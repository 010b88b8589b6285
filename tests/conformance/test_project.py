"""Contract section 1: project and processes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kit.project import Project, Service, procfile

pytestmark = pytest.mark.boot


def test_procfile_runs_gunicorn_with_its_config_and_no_reloader(project: Project) -> None:
    processes = procfile(project.path)
    assert processes["web"].startswith("gunicorn ")
    assert "--config gunicorn.conf.py" in processes["web"]
    assert "reload" not in processes["web"]
    assert processes["release"]


def test_release_prepares_the_database_and_can_run_twice(project: Project, tmp_path: Path) -> None:
    database = tmp_path / "release.sqlite3"
    project.release(DATABASE_URL=f"sqlite:///{database}")
    project.release(DATABASE_URL=f"sqlite:///{database}")
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "items" in tables


def test_listens_on_port_on_all_interfaces(service: Service) -> None:
    listening = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A":  # LISTEN
            address, port = local.split(":")
            listening.add((address, int(port, 16)))
    assert ("00000000", service.port) in listening
