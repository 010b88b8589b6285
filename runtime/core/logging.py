"""One JSON object per line on stdout, for everything the process writes.

structlog renders the service's own events and writes them to stdout
itself: going through the standard library's ``logging`` would double the
cost of the access line. Which of them are written is still up to
``logging``'s configuration: each logger filters at the effective level
that configuration gives its name (Django: ``LOGGING`` in settings.py). Records from
``logging`` (gunicorn, uvicorn, the framework, libraries) pass through the
same processors via structlog's ``ProcessorFormatter``, so every line
carries the same keys: ``timestamp``, ``level``, ``logger``, ``event``, plus
``request_id``, ``trace_id`` and ``span_id`` inside a request. Both paths
write under one lock, so lines from threads never interleave.
"""

from __future__ import annotations

import logging
import logging.config
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import structlog
from opentelemetry import trace
from structlog.typing import Context, EventDict, FilteringBoundLogger, Processor, WrappedLogger

# Header values that must never be written, whatever logs them and however
# the key is spelled (header, WSGI environ or Django META style).
SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "set_cookie",
        "http_authorization",
        "http_proxy_authorization",
        "http_cookie",
    }
)
REDACTED = "[redacted]"
_RUNTIME = __name__.rsplit(".", 1)[0]
_STDOUT_LOCK = threading.RLock()


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The standard library's handler, under the lock the service's own lines take."""

    def createLock(self) -> None:
        self.lock = _STDOUT_LOCK


def _write(line: str) -> None:
    with _STDOUT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class StdoutLogger:
    """structlog's output: one rendered line to stdout per event."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name  # read by structlog.stdlib.add_logger_name

    def msg(self, message: str) -> None:
        _write(message)

    debug = info = warning = error = critical = exception = log = msg


def _stdout_logger(*args: Any) -> StdoutLogger:
    return StdoutLogger(args[0] if args else None)


def _filtering_logger(
    logger: StdoutLogger, processors: Iterable[Processor], context: Context
) -> FilteringBoundLogger:
    """structlog's bound logger, filtering at the level ``logging`` gives this
    logger's name; decided on first use (``cache_logger_on_first_use``)."""
    level = logging.getLogger(logger.name).getEffectiveLevel()
    # A class, though typed as the protocol its instances implement.
    wrapper: Any = structlog.make_filtering_bound_logger(level)
    bound: FilteringBoundLogger = wrapper(logger, processors, context)
    return bound


def span_ids(context: trace.SpanContext) -> tuple[str, str] | None:
    """A span's trace and span ids as log lines write them; None when it has none."""
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add the active span's ids, so a log line leads to its trace."""
    ids = span_ids(trace.get_current_span().get_span_context())
    if ids is not None:
        event_dict["trace_id"], event_dict["span_id"] = ids
    return event_dict


def _redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            key: REDACTED if str(key).lower() in SENSITIVE_KEYS else _redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        if len(value) == 2 and str(value[0]).lower() in SENSITIVE_KEYS:
            return (value[0], REDACTED)
        return [_redact(item) for item in value]
    return value


_SCALARS = frozenset({str, int, float, bool, type(None)})
# Keys already found not to be sensitive: most lines have only these, and a set
# lookup is a third of what lowering each key cost. Bounded, as keys may be made up.
_SAFE_KEYS: set[str] = set()
_SAFE_KEYS_MAX = 4096


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, value in event_dict.items():
        if key not in _SAFE_KEYS:
            if key.lower() in SENSITIVE_KEYS:
                event_dict[key] = REDACTED
                continue
            if len(_SAFE_KEYS) < _SAFE_KEYS_MAX:
                _SAFE_KEYS.add(key)
        if type(value) not in _SCALARS:
            event_dict[key] = _redact(value)
    return event_dict


_second: tuple[int, str] = (-1, "")


def _timestamp() -> str:
    global _second
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    second, prefix = _second
    if seconds != second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second = (seconds, prefix)
    return f"{prefix}.{micros:06d}Z"


def add_timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """``timestamp``: ISO 8601 in UTC to the microsecond, as ``2026-12-02T18:09:54.500554Z``.

    The part up to the second is formatted once a second, not once a line
    (structlog's ``TimeStamper`` made a ``datetime`` for each)."""
    event_dict["timestamp"] = _timestamp()
    return event_dict


def render_json(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
    return orjson.dumps(event_dict, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


# The processor list ``apply_logging_config`` gave structlog for JSON lines;
# None under the console renderer.
_json_processors: list[Processor] | None = None


class AccessLog:
    """The access line (docs/contract.md, section 5), written for every request.

    The line ``get_logger(name).info(event, **fields)`` writes, built in one
    pass: through structlog's chain it took 29 µs, half of them in the chain's
    own plumbing, against 11 (timeit). It is that call when structlog has
    processors other than the service's JSON ones (``LOG_FORMAT=console``, a
    ``structlog.configure`` of the user's). Like structlog's loggers, it
    settles its level and processors on first use.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger = get_logger(name)
        self._mode = ""  # "", then "off", "direct" or "structlog"

    def write(self, event: str, fields: dict[str, Any], ids: tuple[str, str] | None) -> None:
        """``ids`` are the current span's (``span_ids``); ``fields`` becomes the line."""
        mode = self._mode or self._settle()
        if mode == "off":
            return
        if mode == "structlog":
            self._logger.info(event, **fields)
            return
        # The keys in the order the chain adds them (``_shared_processors``).
        line = fields
        line["event"] = event
        bound = structlog.contextvars.get_contextvars()
        if bound:  # the only values here that may hold a secret
            for key, value in redact_secrets(None, "", bound).items():
                line.setdefault(key, value)
        line["level"] = "info"
        line["logger"] = self.name
        line["timestamp"] = _timestamp()
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        _write(render_json(None, "", line))

    def _settle(self) -> str:
        if not structlog.is_configured():
            return "structlog"  # structlog's defaults, until logging is configured
        if logging.getLogger(self.name).getEffectiveLevel() > logging.INFO:
            self._mode = "off"
        elif _json_processors is not None and (
            structlog.get_config()["processors"] is _json_processors
        ):
            self._mode = "direct"
        else:
            self._mode = "structlog"
        return self._mode


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        add_timestamp,
        add_trace_context,
        redact_secrets,
    ]


def _renderer(log_format: str) -> Processor:
    if log_format == "console":
        return structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    return render_json


def formatter(log_format: str = "json") -> structlog.stdlib.ProcessorFormatter:
    """The formatter of the single stdout handler (used by ``dictConfig``)."""
    renderer = _renderer(log_format)
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def logging_config(level: str = "info", log_format: str = "json") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict; gunicorn takes it as ``logconfig_dict``."""
    level = level.upper()
    handler = {"handlers": ["stdout"], "propagate": False, "level": level}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {"()": f"{__name__}.formatter", "log_format": log_format},
        },
        "handlers": {
            "stdout": {
                "class": f"{__name__}.StdoutHandler",
                "stream": "ext://sys.stdout",
                "formatter": "structlog",
            },
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            # uvicorn's workers copy gunicorn's handlers, so these need their own.
            "gunicorn.error": handler,
            "gunicorn.access": handler,
            # The service writes its own access line (contract §5).
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            # SQL statements are in the traces; the pool's routine notices are noise
            # (the service's own pool classes log under its engine module).
            "sqlalchemy": {"level": "WARNING"},
            f"{_RUNTIME}.engine": {"level": "WARNING"},
            # HTTP clients log each request's URL, query string included, where
            # a webhook's secret often sits; outbound calls have their own spans,
            # metrics and log lines (contract §12).
            "httpx2": {"level": "WARNING"},
            "httpcore2": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
        },
    }


_configured: tuple[str, str] | None = None


def configure_logging(level: str = "info", log_format: str = "json") -> None:
    """Route every logger to the JSON handler; a repeated call changes nothing.

    gunicorn's master configures logging before forking, and the workers
    inherit it: reconfiguring there would replace handlers that gunicorn's
    and uvicorn's loggers already hold.
    """
    global _configured
    if _configured == (level, log_format):
        return
    _configured = (level, log_format)
    apply_logging_config(logging_config(level, log_format))


def apply_logging_config(config: dict[str, Any]) -> None:
    """Apply a ``logging_config()`` dict and route structlog's loggers through it.

    ``configure_logging`` calls it with the service's settings.
    """
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
    global _json_processors
    log_format = config["formatters"]["structlog"].get("log_format", "json")
    processors: list[Processor] = [
        *_shared_processors(),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        _renderer(log_format),
    ]
    _json_processors = processors if log_format == "json" else None
    structlog.configure(
        processors=processors,
        logger_factory=_stdout_logger,
        wrapper_class=_filtering_logger,  # type: ignore[arg-type]  # called like a class
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
