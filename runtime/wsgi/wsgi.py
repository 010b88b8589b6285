"""The WSGI boundary between gunicorn and the framework: request bodies read
alike whatever their framing, and a JSON 500 for an exception the framework's
own error handling let through. The request pipeline itself runs inside the
framework (middleware.py), so the framework's test client goes through it too.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from types import TracebackType
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import orjson
from opentelemetry.propagators.textmap import Getter

from . import pipeline
from .config import Settings
from .logging import get_logger
from .request_id import HEADER, request_id

ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]

log = get_logger(__name__)


def environ_key(header: str) -> str:
    """Where a WSGI environ (Django's ``request.META``) holds a request header."""
    return "HTTP_" + header.upper().replace("-", "_")


# The request's X-Request-ID, read from the environ: the frameworks' header
# views (Django's ``request.headers``) are built from the whole environ first.
REQUEST_ID_KEY = environ_key(HEADER)


class EnvironGetter(Getter[Mapping[str, Any]]):
    """Propagation headers (``traceparent``) from a WSGI environ (Django's ``request.META``)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(environ_key(key))
        return [value] if value else None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [key[5:].lower().replace("_", "-") for key in carrier if key.startswith("HTTP_")]


ENVIRON = EnvironGetter()


class BoundaryMiddleware:
    def __init__(self, app: WSGIApplication, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_request_body_bytes

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = False

        def start(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            nonlocal started
            started = True
            return start_response(status, headers, exc_info)

        # A body whose framing the server's parser refuses fails here, before
        # the framework: gunicorn answers it (400) as any malformed request.
        self._read_chunked_body(environ)
        try:
            return self.app(environ, start)
        except Exception:
            log.exception("unhandled exception", http_path=environ.get("PATH_INFO", ""))
            # A response the application had begun is replaced, or abandoned
            # when its headers are already out (PEP 3333's exc_info).
            return _error(start, 500, "internal_error", exc_info=started)

    def _read_chunked_body(self, environ: WSGIEnvironment) -> None:
        """A chunked body, read up to one byte past the limit, handed on as a body
        of known length.

        Neither framework reads one correctly on its own: Django reads
        CONTENT_LENGTH bytes and sees a chunked body as empty, and werkzeug
        stops one at MAX_CONTENT_LENGTH without saying it was longer. One over
        the limit now meets the framework's own 413, and nothing past the
        limit is held in memory.
        """
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not chunked or environ.get("CONTENT_LENGTH"):
            return
        body = environ["wsgi.input"].read(self.max_body + 1)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        # Described as what it now is, a body of known length: werkzeug
        # ignores CONTENT_LENGTH while the request says it is chunked.
        del environ["HTTP_TRANSFER_ENCODING"]


def _error(start: StartResponse, status: int, code: str, exc_info: bool = False) -> list[bytes]:
    exchange = pipeline.current()
    body = pipeline.error_body(status, code)
    if body["request_id"] is None:
        body["request_id"] = request_id(None)
    payload = orjson.dumps(body)
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(payload))),
        (HEADER, body["request_id"]),
    ]
    start(f"{status} {HTTPStatus(status).phrase}", headers, sys.exc_info() if exc_info else None)
    if exchange is not None:
        exchange.finish(status)
    return [payload]
