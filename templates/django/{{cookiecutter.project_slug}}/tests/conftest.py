"""In-process tests with Django's test client (pytest-django) on a private
SQLite database; spans are not exported (tracing starts in gunicorn workers)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _database(db: None) -> None:
    """Every test may use the database; each runs in a transaction rolled back after it."""
