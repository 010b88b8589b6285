"""The outermost WSGI layer: each request's id and log context (docs/contract.md,
section 4), and a JSON 500 should anything below it fail.

It wraps any WSGI application. The framework finds the id in
``environ[REQUEST_ID_KEY]`` for its error bodies; every log line written while
the request is served carries it as ``request_id``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from types import TracebackType
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import orjson
import structlog
from werkzeug.wsgi import ClosingIterator

from .http_errors import error_body
from .logging import get_logger
from .request_id import HEADER, bind_request_id

REQUEST_ID_KEY = "{{ cookiecutter.package_name }}.request_id"
_INCOMING = "HTTP_" + HEADER.upper().replace("-", "_")

log = get_logger(__name__)

ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]


class RequestContextMiddleware:
    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # WSGI hands header values over as latin-1 text, so anything that is not
        # plain ASCII fails the check and is never echoed or logged.
        request_id = bind_request_id(environ.get(_INCOMING, ""))
        environ[REQUEST_ID_KEY] = request_id

        started = False

        def start_with_id(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            nonlocal started
            started = True
            headers = [(name, value) for name, value in headers if name.lower() != HEADER.lower()]
            headers.append((HEADER, request_id))
            return start_response(status, headers, exc_info)

        try:
            body: Iterable[bytes] = self.app(environ, start_with_id)
        except Exception:
            # The framework answers its own errors; this is for failures in its
            # error handling itself, which gunicorn would answer in plain text.
            log.exception("unhandled exception", http_path=environ.get("PATH_INFO", ""))
            error = orjson.dumps(error_body("internal_error", request_id, 500))
            # A response the application had begun is replaced, or abandoned
            # when its headers are already out (PEP 3333's exc_info).
            start_with_id(
                "500 Internal Server Error",
                [("Content-Type", "application/json"), ("Content-Length", str(len(error)))],
                sys.exc_info() if started else None,
            )
            body = [error]
        # Once the response is sent, the server's own lines (a closed
        # connection, the next keep-alive wait) belong to no request.
        return ClosingIterator(body, structlog.contextvars.clear_contextvars)
