"""Settings from the environment, parsed once, with defaults that boot anywhere.

Every variable is documented in README.md ("Configuration"). A value that
cannot be parsed raises ``ConfigError`` naming the variable, so a typo stops
the service at startup instead of surfacing as odd behaviour later.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

SERVICE_SLUG = "{{ cookiecutter.project_slug }}"
SERVICE_VERSION = "{{ cookiecutter.version }}"
DEFAULT_DATABASE_URL = "sqlite:///{{ cookiecutter.package_name }}.sqlite3"
ASYNC_WORKERS = {{ cookiecutter._framework == "fastapi" }}

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "console")


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot use."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        super().__init__(f"{name}={value!r} is invalid: expected {expected}.")
        self.variable = name


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or None

    def string(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self.raw(name) or default).lower()
        if value not in choices:
            raise ConfigError(name, value, "one of " + ", ".join(choices))
        return value

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(name, raw, f"an integer >= {minimum}") from None
        if value < minimum:
            raise ConfigError(name, raw, f"an integer >= {minimum}")
        return value

    def seconds(self, name: str, default: float, minimum: float = 0.0) -> float:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(name, raw, f"a number of seconds >= {minimum:g}") from None
        if not math.isfinite(value) or value < minimum:
            raise ConfigError(name, raw, f"a number of seconds >= {minimum:g}")
        return value


@dataclass(frozen=True, slots=True)
class Settings:
    environment: str
    port: int
    database_url: str
    log_level: str
    log_format: str
    web_concurrency: int
    web_threads: int
    max_in_flight: int
    max_request_body_bytes: int
    graceful_timeout: float
    drain_delay: float
    keepalive: float
    db_pool_size: int
    db_max_overflow: int
    db_pool_timeout: float
    db_connect_timeout: float
    db_statement_timeout: float
    db_pool_recycle: float
    ready_timeout: float
    service_name: str
    service_version: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _Reader(os.environ if environ is None else environ)
        web_threads = env.integer("WEB_THREADS", 8, minimum=3)
        # Threaded workers keep two threads free to answer probes and refusals.
        default_in_flight = 100 if ASYNC_WORKERS else web_threads - 2
        database_url = env.string("DATABASE_URL", DEFAULT_DATABASE_URL)
        if database_url.startswith("postgres://"):
            database_url = "postgresql://" + database_url.removeprefix("postgres://")
        if not database_url.startswith(("sqlite:", "postgresql:", "postgresql+")):
            raise ConfigError("DATABASE_URL", database_url, "a sqlite:/// or postgresql:// URL")
        return cls(
            environment=env.string("ENVIRONMENT", "development"),
            port=env.integer("PORT", 8000, minimum=1),
            database_url=database_url,
            log_level=env.choice("LOG_LEVEL", "info", LOG_LEVELS),
            log_format=env.choice("LOG_FORMAT", "json", LOG_FORMATS),
            web_concurrency=env.integer("WEB_CONCURRENCY", 1, minimum=1),
            web_threads=web_threads,
            max_in_flight=env.integer("MAX_IN_FLIGHT", default_in_flight, minimum=1),
            max_request_body_bytes=env.integer("MAX_REQUEST_BODY_BYTES", 1024 * 1024, minimum=1),
            graceful_timeout=env.seconds("GRACEFUL_TIMEOUT", 20.0, minimum=1.0),
            drain_delay=env.seconds("DRAIN_DELAY", 2.0),
            keepalive=env.seconds("KEEPALIVE", 5.0, minimum=1.0),
            db_pool_size=env.integer("DB_POOL_SIZE", 5, minimum=1),
            db_max_overflow=env.integer("DB_MAX_OVERFLOW", 5),
            db_pool_timeout=env.seconds("DB_POOL_TIMEOUT", 2.0, minimum=0.1),
            db_connect_timeout=env.seconds("DB_CONNECT_TIMEOUT", 3.0, minimum=1.0),
            db_statement_timeout=env.seconds("DB_STATEMENT_TIMEOUT", 5.0, minimum=0.1),
            db_pool_recycle=env.seconds("DB_POOL_RECYCLE", 1800.0, minimum=1.0),
            ready_timeout=env.seconds("READY_TIMEOUT", 1.0, minimum=0.1),
            service_name=env.string("OTEL_SERVICE_NAME", SERVICE_SLUG),
            service_version=SERVICE_VERSION,
        )

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@cache
def get_settings() -> Settings:
    return Settings.from_env()
