"""Settings from the environment, parsed once, with defaults that boot anywhere.

Every variable is documented in README.md ("Configuration"). A value that
cannot be parsed raises ``ConfigError`` naming the variable, so a typo stops
the service at startup instead of surfacing as odd behaviour later.

``get_settings()`` is the one way to the settings; the entry points (the app
factory, gunicorn's configuration, the migrations) call it and hand the
settings down.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import parse_qsl, unquote, urlsplit

from . import build
from .concurrency import concurrency

# The service's own package: this runtime lives in ``<package>.runtime``.
PACKAGE = __name__.split(".")[0]
DEFAULT_DATABASE_URL = f"sqlite:///{PACKAGE}.sqlite3"

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "console")
# The OpenTelemetry variables that decide what tracing does. The SDK would
# log a warning and fall back to a default for a typo (a sampler that keeps
# every trace, say); or fail in each worker, after fork, for the exporters.
TRACES_EXPORTERS = ("otlp", "console", "none")
OTLP_PROTOCOLS = ("http/protobuf", "grpc")
GRPC_EXPORTER = "opentelemetry.exporter.otlp.proto.grpc"
TRACES_SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot use."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        super().__init__(f"{name}={value!r} is invalid: expected {expected}.")
        self.variable = name


class Reader:
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

    def choices(self, name: str, default: str, choices: tuple[str, ...]) -> tuple[str, ...]:
        """A comma-separated list, each item one of ``choices``."""
        values = tuple(value.strip() for value in (self.raw(name) or default).lower().split(","))
        for value in values:
            if value not in choices:
                raise ConfigError(name, value, "a comma-separated list of " + ", ".join(choices))
        return values

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

    def url(self, name: str) -> str:
        """An ``http://`` or ``https://`` URL with a host, or "" when unset."""
        raw = self.raw(name)
        if raw is None:
            return ""
        try:
            parts = urlsplit(raw)
            parts.port  # noqa: B018  # raises for a port that is not a number
        except ValueError:
            raise ConfigError(name, raw, "an http:// or https:// URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(name, raw, "an http:// or https:// URL")
        return raw

    def sentry_dsn(self, name: str) -> str:
        """A Sentry DSN, ``scheme://<public key>@<host>/<project id>``, or ""."""
        raw = self.raw(name)
        if raw is None:
            return ""
        parts = urlsplit(self.url(name))
        if not parts.username or not parts.path.rstrip("/").rsplit("/", 1)[-1].isdigit():
            raise ConfigError(name, raw, "a Sentry DSN such as https://<key>@<host>/<project id>")
        return raw

    def check_ratio(self, name: str) -> None:
        raw = self.raw(name)
        if raw is None:
            return
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(name, raw, "a number between 0 and 1") from None
        if not 0 <= value <= 1:
            raise ConfigError(name, raw, "a number between 0 and 1")


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """``DATABASE_URL``, parsed here once for every consumer (SQLAlchemy, Django, psycopg).

    Written out because each library made for the job parses for itself only
    (SQLAlchemy's ``make_url``, dj-database-url for Django).
    """

    backend: str  # "sqlite" or "postgresql"; the service picks the driver
    name: str  # the database's name, or the SQLite file (":memory:" for none)
    host: str = ""
    port: int | None = None
    user: str = ""
    password: str = field(default="", repr=False)
    options: tuple[tuple[str, str], ...] = ()  # query parameters, e.g. sslmode

    @classmethod
    def parse(cls, raw: str, variable: str = "DATABASE_URL") -> DatabaseUrl:
        expected = "a sqlite:///path or postgresql://user:password@host:port/name URL"
        scheme, separator, rest = raw.partition("://")
        backend = {"sqlite": "sqlite", "postgres": "postgresql", "postgresql": "postgresql"}.get(
            scheme.split("+", 1)[0].lower()
        )
        if backend is None or not separator:
            raise ConfigError(variable, raw, expected)
        if backend == "sqlite":
            # sqlite:///relative.db, sqlite:////absolute.db, sqlite:// (in memory)
            path = rest.split("?", 1)[0]
            return cls(backend, path[1:] if path.startswith("/") else path or ":memory:")
        try:
            parts = urlsplit(raw)
            port = parts.port
        except ValueError:
            raise ConfigError(variable, raw, expected) from None
        return cls(
            backend,
            name=unquote(parts.path.lstrip("/")),
            host=unquote(parts.hostname or ""),
            port=port,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            options=tuple(parse_qsl(parts.query)),
        )

    @property
    def is_sqlite(self) -> bool:
        return self.backend == "sqlite"


@dataclass(frozen=True, slots=True)
class Tracing:
    """What tracing does; the SDK reads the rest of the ``OTEL_*`` variables itself."""

    enabled: bool
    exporters: tuple[str, ...]  # "otlp", "console"; none for OTEL_TRACES_EXPORTER=none
    otlp_protocol: str

    @classmethod
    def from_env(cls, env: Reader) -> Tracing:
        # Only the variables that apply are read.
        if env.choice("OTEL_SDK_DISABLED", "false", ("true", "false")) == "true":
            return cls(enabled=False, exporters=(), otlp_protocol="")
        sampler = env.choice("OTEL_TRACES_SAMPLER", "parentbased_always_on", TRACES_SAMPLERS)
        if sampler.endswith("traceidratio"):
            env.check_ratio("OTEL_TRACES_SAMPLER_ARG")
        exporters = env.choices("OTEL_TRACES_EXPORTER", "otlp", TRACES_EXPORTERS)
        protocol = ""
        if "otlp" in exporters:
            protocol = env.choice("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", OTLP_PROTOCOLS)
            protocol = env.choice("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", protocol, OTLP_PROTOCOLS)
            if protocol == "grpc" and importlib.util.find_spec(GRPC_EXPORTER) is None:
                raise ConfigError(
                    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
                    if env.raw("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                    else "OTEL_EXPORTER_OTLP_PROTOCOL",
                    protocol,
                    "http/protobuf, or install the grpc extra",
                )
        return cls(
            enabled=True,
            exporters=tuple(name for name in exporters if name != "none"),
            otlp_protocol=protocol,
        )


@dataclass(frozen=True, slots=True)
class Settings:
    environment: str
    port: int
    database: DatabaseUrl
    log_level: str
    log_format: str
    web_concurrency: int
    web_threads: int  # 0 for asyncio workers, which have no threads to size
    max_in_flight: int
    max_request_body_bytes: int
    graceful_timeout: float
    drain_delay: float
    keepalive: float
    request_timeout: float
    db_pool_size: int
    db_max_overflow: int
    db_pool_timeout: float
    db_connect_timeout: float
    db_statement_timeout: float
    db_pool_recycle: float
    ready_timeout: float
    http_client_timeout: float
    http_client_connect_timeout: float
    webhook_url: str  # "" when no webhook is configured
    sentry_dsn: str = field(repr=False)  # "" when error tracking is off
    service_name: str
    service_version: str
    tracing: Tracing

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = Reader(os.environ if environ is None else environ)
        web_threads, default_in_flight = concurrency(env)
        return cls(
            environment=env.string("ENVIRONMENT", "development"),
            port=env.integer("PORT", 8000, minimum=1),
            database=DatabaseUrl.parse(env.string("DATABASE_URL", DEFAULT_DATABASE_URL)),
            log_level=env.choice("LOG_LEVEL", "info", LOG_LEVELS),
            log_format=env.choice("LOG_FORMAT", "json", LOG_FORMATS),
            web_concurrency=env.integer("WEB_CONCURRENCY", 1, minimum=1),
            web_threads=web_threads,
            max_in_flight=env.integer("MAX_IN_FLIGHT", default_in_flight, minimum=1),
            max_request_body_bytes=env.integer("MAX_REQUEST_BODY_BYTES", 1024 * 1024, minimum=1),
            graceful_timeout=env.seconds("GRACEFUL_TIMEOUT", 20.0, minimum=1.0),
            drain_delay=env.seconds("DRAIN_DELAY", 2.0),
            keepalive=env.seconds("KEEPALIVE", 5.0, minimum=1.0),
            request_timeout=env.seconds("REQUEST_TIMEOUT", 10.0, minimum=1.0),
            db_pool_size=env.integer("DB_POOL_SIZE", 5, minimum=1),
            db_max_overflow=env.integer("DB_MAX_OVERFLOW", 5),
            db_pool_timeout=env.seconds("DB_POOL_TIMEOUT", 2.0, minimum=0.1),
            db_connect_timeout=env.seconds("DB_CONNECT_TIMEOUT", 3.0, minimum=1.0),
            db_statement_timeout=env.seconds("DB_STATEMENT_TIMEOUT", 5.0, minimum=0.1),
            db_pool_recycle=env.seconds("DB_POOL_RECYCLE", 1800.0, minimum=1.0),
            ready_timeout=env.seconds("READY_TIMEOUT", 1.0, minimum=0.1),
            http_client_timeout=env.seconds("HTTP_CLIENT_TIMEOUT", 5.0, minimum=0.1),
            http_client_connect_timeout=env.seconds(
                "HTTP_CLIENT_CONNECT_TIMEOUT", 2.0, minimum=0.1
            ),
            webhook_url=env.url("WEBHOOK_URL"),
            sentry_dsn=env.sentry_dsn("SENTRY_DSN"),
            service_name=env.string("OTEL_SERVICE_NAME", build.DISTRIBUTION),
            service_version=service_version(),
            tracing=Tracing.from_env(env),
        )


def service_version() -> str:
    """The version in the project's ``pyproject.toml``, as installed."""
    try:
        return importlib.metadata.version(build.DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # run from a checkout not installed
        return "0+unknown"


@cache
def get_settings() -> Settings:
    return Settings.from_env()
