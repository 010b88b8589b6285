"""In-process tests against a private SQLite database, or the database named by
TEST_DATABASE_URL (CI runs them against PostgreSQL too); spans are not exported."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from flask import Flask
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parent.parent
_database_dir = tempfile.mkdtemp(prefix="{{ cookiecutter.package_name }}-tests-")
os.environ["DATABASE_URL"] = (
    os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{_database_dir}/test.sqlite3"
)
os.environ["OTEL_TRACES_EXPORTER"] = "none"


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_database_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def app() -> Flask:
    command.upgrade(Config(str(ROOT / "alembic.ini")), "head")
    from {{ cookiecutter.package_name }}.app import create_app

    return create_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
