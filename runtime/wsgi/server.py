"""The gunicorn worker: gunicorn's threaded worker, adjusted for the
contract's shutdown (docs/contract.md, section 8).

A WSGI application has no lifespan: what it must do once its last request is
done (wait for background work, close the pool) it registers with
``on_exit``, and the worker runs it, last registered first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from gunicorn.http.body import ChunkedReader
from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker

from .config import get_settings

_exit_callbacks: list[Callable[[], None]] = []


def on_exit(callback: Callable[[], None]) -> None:
    """Run ``callback`` when this worker stops, after its last request."""
    _exit_callbacks.append(callback)


class Worker(_ThreadWorker):  # type: ignore[misc]  # gunicorn has no types
    def init_process(self) -> None:
        # Runs in the worker, after fork. gunicorn.py gives the master
        # GRACEFUL_TIMEOUT plus a margin before its SIGKILL; the worker waits
        # only GRACEFUL_TIMEOUT for in-flight requests, so its clean-up
        # (on_exit callbacks, then worker_exit: spans) always runs.
        settings = get_settings()
        self.cfg.set("graceful_timeout", math.ceil(settings.graceful_timeout))
        self.max_body = settings.max_request_body_bytes
        super().init_process()

    def handle_request(self, req: Any, conn: Any) -> bool:
        # A body above MAX_REQUEST_BODY_BYTES gets 413 without being read, and
        # gunicorn drops a connection whose unread body it cannot drain (it
        # gives up after 64 KiB): the 413 must say "Connection: close", or the
        # client's next request on that connection finds it gone.
        declared = next((value for name, value in req.headers if name == "CONTENT-LENGTH"), "")
        if declared.isdigit() and int(declared) > self.max_body:
            req.force_close()
        elif isinstance(reader := getattr(req.body, "reader", None), ChunkedReader):
            # A chunked body's size is known only once it is read: the
            # connection is kept after the response only if the application
            # read the body to its end. gunicorn asks when it writes the headers.
            closes = req.should_close
            req.should_close = lambda: closes() or getattr(reader, "parser", None) is not None
        return bool(super().handle_request(req, conn))

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            # Stopping: close this worker's copy of the listening socket too.
            # While any process holds it, connections that arrive during the
            # drain wait in the backlog and are reset when the worker exits;
            # once every copy is closed they are refused at once.
            for listener in self.sockets:
                listener.close()

    def run(self) -> None:
        try:
            super().run()
        finally:
            while _exit_callbacks:
                _exit_callbacks.pop()()
