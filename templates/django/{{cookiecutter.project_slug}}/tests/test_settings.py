"""Production settings pass Django's deployment checks, and refuse to start
without the values production needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "ENVIRONMENT": "production",
    "DJANGO_SECRET_KEY": "x7!kq2-" + "Zr9mVw3Lp8Tn4Bc6Hd1Jf5Gs0" * 2,
    "DJANGO_ALLOWED_HOSTS": "api.example.com",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_models_and_migrations_agree() -> None:
    result = manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_checks_pass_with_production_settings() -> None:
    result = manage("check", "--deploy", "--fail-level", "DEBUG", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"])
def test_production_requires_its_settings(missing: str) -> None:
    env = {key: value for key, value in PRODUCTION.items() if key != missing}
    result = manage("check", **env)
    assert result.returncode == 1
    assert missing in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_is_for_development_only() -> None:
    result = manage("check", **PRODUCTION, DJANGO_DEBUG="true")
    assert result.returncode == 1
    assert "DJANGO_DEBUG" in result.stderr
