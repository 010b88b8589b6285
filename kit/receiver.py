"""A local HTTP receiver standing in for the services a service calls (a webhook's
target, Sentry's ingest host): it records every request and answers as told.

Standard library only: the kit's tests use this module, and every generated
project carries a verbatim copy (``tests/runtime/receiver.py``) for the tests
of its runtime's HTTP client.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Received:
    method: str
    path: str  # with its query string
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP/1.1 server on 127.0.0.1.

    Each request gets the next status of ``answer(...)``'s queue, then
    ``status`` once the queue is empty; those, with ``hang`` set, it holds that
    many seconds first (released at ``close``)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 200
        self.hang = 0.0
        self._queue: deque[int] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                record = Received(
                    self.command,
                    self.path,
                    {name.lower(): value for name, value in self.headers.items()},
                    body,
                )
                status, hang = receiver._take(record)
                if hang and receiver._closing.wait(hang):
                    return
                payload = b'{"ok": true}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, *statuses: int, then: int = 200, hang: float = 0.0) -> None:
        """The statuses of the next requests, in order, then ``then`` for the rest,
        each after ``hang`` seconds."""
        with self._lock:
            self._queue = deque(statuses)
            self.status, self.hang = then, hang

    def _take(self, record: Received) -> tuple[int, float]:
        with self._lock:
            self.received.append(record)
            if self._queue:
                return self._queue.popleft(), 0.0
            return self.status, self.hang

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def wait_for(
        self, predicate: Callable[[Received], bool], count: int = 1, timeout: float = 10.0
    ) -> list[Received]:
        """The requests matching ``predicate`` once ``count`` arrived; fails after ``timeout``."""
        return wait_for_matches(self.snapshot, predicate, count, timeout, "request(s)")

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()


def wait_for_matches(
    snapshot: Callable[[], list[T]],
    predicate: Callable[[T], bool],
    count: int,
    timeout: float,
    what: str,
    seen: Callable[[list[T]], str] = lambda _: "",
) -> list[T]:
    """What ``snapshot`` holds that matches ``predicate``, once at least ``count``
    match; an assertion error after ``timeout`` seconds (``seen`` says what came)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [item for item in snapshot() if predicate(item)]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(
                f"expected {count} matching {what} within {timeout}s, got {len(found)}"
                + seen(snapshot())
            )
        time.sleep(0.02)
