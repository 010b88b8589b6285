"""In-process tests with Django's test client (pytest-django) on a private
SQLite database, or on the server TEST_DATABASE_URL names (CI runs them on
PostgreSQL too); spans are not exported (tracing starts in gunicorn workers)."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connections

from {{ cookiecutter.package_name }}.runtime import Settings, database_settings


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """pytest-django's hook to change DATABASES before the test database is made."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        environ = {**os.environ, "DATABASE_URL": url}
        # In place, as Django's connection handler shares the dict; the
        # connection made from the old settings goes.
        settings.DATABASES["default"].update(database_settings(Settings.from_env(environ)))
        connections["default"].close()
        del connections["default"]


@pytest.fixture(autouse=True)
def _database(db: None) -> None:
    """Every test may use the database; each runs in a transaction rolled back after it."""
