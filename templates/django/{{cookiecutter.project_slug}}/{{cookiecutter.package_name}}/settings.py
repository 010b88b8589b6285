"""Django settings, read from the environment (README.md, "Configuration").

The variables every service of the kit shares (``DATABASE_URL``, the pool,
logging, limits) are parsed once by ``config.py``; only Django's own
(``DJANGO_*``) are read here. A missing or unusable value raises
``ConfigError`` naming the variable, and the service does not start.
"""

from __future__ import annotations

import os
from typing import Any

import dj_database_url

from .config import ConfigError, Settings, get_settings
from .logging import logging_config
from .pgclient import libpq_options

service = get_settings()
DEVELOPMENT = service.environment == "development"
PACKAGE = "{{ cookiecutter.package_name }}"


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def _flag(name: str, default: bool) -> bool:
    value = _env(name).lower()
    if not value:
        return default
    if value not in ("true", "false", "1", "0"):
        raise ConfigError(name, value, "true or false")
    return value in ("true", "1")


def _secret_key() -> str:
    key = _env("DJANGO_SECRET_KEY")
    if key:
        return key
    if DEVELOPMENT:
        return "django-insecure-development-only-key"
    raise ConfigError(
        "DJANGO_SECRET_KEY",
        key,
        f"a long random string whenever ENVIRONMENT is not development "
        f"(ENVIRONMENT={service.environment}); "
        'python -c "import secrets; print(secrets.token_urlsafe(50))" makes one',
    )


def _allowed_hosts() -> list[str]:
    hosts = [host.strip() for host in _env("DJANGO_ALLOWED_HOSTS").split(",") if host.strip()]
    if hosts:
        return hosts
    if DEVELOPMENT:
        return ["localhost", "127.0.0.1", "[::1]"]
    raise ConfigError(
        "DJANGO_ALLOWED_HOSTS",
        "",
        "the comma-separated host names the service answers to "
        f"whenever ENVIRONMENT is not development (ENVIRONMENT={service.environment})",
    )


def _debug() -> bool:
    debug = _flag("DJANGO_DEBUG", default=False)
    if debug and not DEVELOPMENT:
        raise ConfigError("DJANGO_DEBUG", "true", "false unless ENVIRONMENT is development")
    return debug


def database(settings: Settings) -> dict[str, Any]:
    """``DATABASE_URL`` as Django's ``DATABASES["default"]`` (the pool: README.md, "Database")."""
    scheme, _, rest = settings.database_url.partition("://")
    url = scheme.split("+")[0] + "://" + rest  # postgresql+psycopg:// means postgresql:// here
    backend = "sqlite3" if settings.uses_sqlite else "postgresql"
    database: dict[str, Any] = dict(
        dj_database_url.parse(
            url,
            engine=f"{PACKAGE}.backends.{backend}",
            # Connections go back to the worker's pool when a request ends, and
            # the pool checks them before reuse (backends/pooling.py).
            conn_max_age=0,
            conn_health_checks=False,
        )
    )
    options: dict[str, Any] = database.setdefault("OPTIONS", {})
    if settings.uses_sqlite:
        options.update(
            {
                # How long to wait for another connection's write lock.
                "timeout": settings.db_statement_timeout,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL",
            }
        )
    else:
        options.update(libpq_options(settings))
    return database


SECRET_KEY = _secret_key()
DEBUG = _debug()
ALLOWED_HOSTS = _allowed_hosts()

INSTALLED_APPS = [
    f"{PACKAGE}.apps.ServiceConfig",
    f"{PACKAGE}.items",
    "health_check",
]

MIDDLEWARE = [
    f"{PACKAGE}.middleware.RequestIdMiddleware",
    f"{PACKAGE}.middleware.ProbeMiddleware",
    f"{PACKAGE}.middleware.RequestMiddleware",
    f"{PACKAGE}.middleware.AllowedHostsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = f"{PACKAGE}.urls"
WSGI_APPLICATION = f"{PACKAGE}.wsgi.application"

DATABASES = {"default": database(service)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False

# Larger bodies raise RequestDataTooBig when a view reads them: 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = service.max_request_body_bytes

# The API takes no cookies, so it needs no CSRF tokens: its views are
# csrf_exempt, and the middleware stays for anything added later.
CSRF_FAILURE_VIEW = f"{PACKAGE}.errors.csrf_failure"
CSRF_COOKIE_SECURE = not DEVELOPMENT
SESSION_COOKIE_SECURE = not DEVELOPMENT
# TLS ends at the load balancer, which says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _flag("DJANGO_SSL_REDIRECT", default=not DEVELOPMENT)
SECURE_HSTS_SECONDS = 0 if DEVELOPMENT else 365 * 24 * 3600
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True

# One JSON line per record on stdout (logging.py); Django's own loggers
# propagate to it. Every status is in the access line and every unhandled
# exception is logged once, with its traceback (errors.log_unhandled_exception),
# so django.request's per-response lines would only repeat them.
LOGGING_CONFIG = f"{PACKAGE}.logging.apply_logging_config"
LOGGING = logging_config(service.log_level, service.log_format)
LOGGING["handlers"]["discard"] = {"class": "logging.NullHandler"}
LOGGING["loggers"].update(
    {
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
        "django.request": {"handlers": ["discard"], "propagate": False},
        # Failed checks are reported by /ready and its "readiness changed" line.
        "health_check": {"level": "ERROR"},
    }
)
