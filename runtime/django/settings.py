"""The settings the kit's runtime needs, read from the environment (README.md,
"Configuration"); the project's settings.py imports them all and adds its own.

The variables every service of the kit shares (``DATABASE_URL``, the pool,
logging, limits) are parsed once by config.py; only Django's own
(``DJANGO_*``) are read here. A missing or unusable value raises
``ConfigError`` naming the variable, and the service does not start.
"""

from __future__ import annotations

import os
from typing import Any

from .config import ConfigError, get_settings
from .database import database_settings
from .logging import logging_config

__all__ = [
    "ALLOWED_HOSTS",
    "CSRF_COOKIE_SECURE",
    "DATABASES",
    "DATA_UPLOAD_MAX_MEMORY_SIZE",
    "DEBUG",
    "DEFAULT_AUTO_FIELD",
    "LANGUAGE_CODE",
    "LOGGING",
    "LOGGING_CONFIG",
    "RUNTIME_APPS",
    "RUNTIME_MIDDLEWARE",
    "SECRET_KEY",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_HSTS_SECONDS",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "SILENCED_SYSTEM_CHECKS",
    "TIME_ZONE",
    "USE_I18N",
    "USE_TZ",
]

_RUNTIME = __name__.rsplit(".", 1)[0]
service = get_settings()
DEVELOPMENT = service.environment == "development"


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


def _logging() -> dict[str, Any]:
    """One JSON line per record on stdout (logging.py); Django's own loggers
    propagate to it. Every status is in the access line and every unhandled
    exception is logged once, with its traceback, so django.request's
    per-response lines would only repeat them."""
    config = logging_config(service.log_level, service.log_format)
    config["handlers"]["discard"] = {"class": "logging.NullHandler"}
    config["loggers"].update(
        {
            "django": {"handlers": [], "propagate": True},
            "django.server": {"handlers": [], "propagate": True},
            "django.request": {"handlers": ["discard"], "propagate": False},
            # A Host outside ALLOWED_HOSTS is the client's mistake, answered 400
            # and in the access line: no error, no traceback for every scanner.
            "django.security.DisallowedHost": {"handlers": ["discard"], "propagate": False},
            # Failed checks are reported by /ready and its "readiness changed" line.
            "health_check": {"level": "ERROR"},
        }
    )
    return config


SECRET_KEY = _secret_key()
DEBUG = _debug()
ALLOWED_HOSTS = _allowed_hosts()

# The runtime's app, before the project's own.
RUNTIME_APPS = [_RUNTIME, "health_check"]
# The runtime's middleware, first (middleware.py). The API takes no cookies,
# so there is no cross-site request to forge: no CSRF middleware, whose
# tokens every POST of every API client would need. Add it back (and drop
# the silenced check) with cookie-based sessions.
SILENCED_SYSTEM_CHECKS = ["security.W003"]
RUNTIME_MIDDLEWARE = [
    f"{_RUNTIME}.middleware.RequestMiddleware",
    f"{_RUNTIME}.middleware.ProbeMiddleware",
    f"{_RUNTIME}.middleware.AllowedHostsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

DATABASES = {"default": database_settings(service)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False

# Larger bodies raise RequestDataTooBig when a view reads them: 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = service.max_request_body_bytes

CSRF_COOKIE_SECURE = not DEVELOPMENT
SESSION_COOKIE_SECURE = not DEVELOPMENT
# TLS ends at the load balancer, which says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _flag("DJANGO_SSL_REDIRECT", default=not DEVELOPMENT)
SECURE_HSTS_SECONDS = 0 if DEVELOPMENT else 365 * 24 * 3600
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True

LOGGING_CONFIG = f"{_RUNTIME}.logging.apply_logging_config"
LOGGING = _logging()
