"""Production settings pass Django's deployment checks, and refuse to start
without the values production needs."""

from __future__ import annotations

import json
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


def test_logging_setting_governs_the_services_own_loggers(tmp_path: Path) -> None:
    (tmp_path / "quiet_settings.py").write_text(
        "from {{ cookiecutter.package_name }}.settings import *\n"
        'LOGGING["loggers"]["{{ cookiecutter.package_name }}.items"] = {"level": "WARNING"}\n'
    )
    script = (
        "import django\n"
        "django.setup()\n"
        "from {{ cookiecutter.package_name }}.runtime import get_logger\n"
        "get_logger('{{ cookiecutter.package_name }}.items.views').info('quiet info')\n"
        "get_logger('{{ cookiecutter.package_name }}.items.views').warning('loud warning')\n"
        "get_logger('{{ cookiecutter.package_name }}.views').info('other info')\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **environ,
            "DJANGO_SETTINGS_MODULE": "quiet_settings",
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line)["event"] for line in result.stdout.splitlines() if line.strip()]
    assert "loud warning" in events
    assert "other info" in events
    assert "quiet info" not in events
