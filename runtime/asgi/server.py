"""The gunicorn worker: uvicorn's HTTP protocol under gunicorn's supervision, with
the bounds gunicorn puts on every request it reads itself (the WSGI services')."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from http import HTTPStatus
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn_worker import UvicornWorker as _UvicornWorker

from .config import get_settings

# gunicorn's defaults: limit_request_line (414 beyond it), limit_request_field_size
# (431, the field's line with its CRLF) and limit_request_fields (431).
MAX_REQUEST_LINE = 4094
MAX_FIELD_SIZE = 8190
MAX_FIELDS = 100
# The longest head within those limits. Counted as the bytes arrive, it stops a
# head that never ends (one endless field) before the parser has to hold it.
MAX_HEAD = MAX_REQUEST_LINE + 2 + MAX_FIELDS * MAX_FIELD_SIZE + 2
HTTP_VERSIONS = ("1.1", "1.0")


class RefusedHead(Exception):
    """Raised from a parser callback: httptools stops, uvicorn calls ``send_400_response``."""


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (its speed), with three changes:

    - a request head beyond gunicorn's limits is refused (414 or 431), and one
      that keeps coming is cut off at ``MAX_HEAD`` bytes: httptools copies a
      field's whole value again for every piece of it that arrives;
    - HTTP versions other than 1.0 and 1.1 are refused (400): llhttp reads
      ``GET /`` as HTTP/0.9, and reads HTTP/2.0 in HTTP/1.1 syntax;
    - bytes that cannot be parsed while earlier requests of the connection
      still await their answers end the connection after those answers (RFC
      9112, section 9.3.2: answers go in the order of the requests). uvicorn
      would answer 400 at once, in place of the answer the client waits for;
    - a request, head and body, has REQUEST_TIMEOUT seconds from its first byte
      to arrive whole (408 and the connection closed), as in the threaded
      workers: a slow sender would otherwise keep its slot (MAX_IN_FLIGHT).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True  # the next bytes are (part of) a request head
        self._head_bytes = 0  # of the head being read, counted in whole reads
        self._heads = 0  # heads read on this connection
        self._refusal = HTTPStatus.BAD_REQUEST  # the answer to the bytes the parser stops at
        self._refused = False  # nothing more is read on this connection
        self._message_cycle: RequestResponseCycle | None = None  # whose body is being read
        self._cycles: deque[RequestResponseCycle] = deque()  # not yet answered, in order
        self._timeout = get_settings().request_timeout
        # The loop's time at the first byte of the request not yet received whole.
        self._receiving_since: float | None = None
        # One timer per connection, not per request: when it fires early for
        # a later request it is set again for that one's deadline. Setting and
        # cancelling a timer took 1.3 µs a request (uvloop, timeit); reading
        # the loop's clock takes 0.1.
        self._deadline: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the connection closes once the answers it owes are sent
        if self._reading_head and self._receiving_since is None:
            self._receiving_since = now = self.loop.time()
            if self._deadline is None:
                self._deadline = self.loop.call_at(now + self._timeout, self._too_slow)
        head_before, heads_before = self._reading_head, self._heads
        super().data_received(data)
        # Only a read that began and ended inside one head is counted: all of it
        # is that head's. A head that begins within a read is undercounted by
        # at most that read; its fields are still checked one by one.
        if head_before and self._reading_head and self._heads == heads_before:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD and not self._refused:
                self.logger.warning("Request header fields too large.")
                self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        self._heads += 1
        refusal = self._check_head()
        if refusal is not None:
            self._refusal = refusal
            raise RefusedHead(refusal)
        earlier = self.cycle
        super().on_headers_complete()
        if self.cycle is not earlier:
            while self._cycles and self._cycles[0].response_complete:
                self._cycles.popleft()
            self._cycles.append(self.cycle)
            self._message_cycle = self.cycle

    def _check_head(self) -> HTTPStatus | None:
        if self.parser.get_http_version() not in HTTP_VERSIONS:
            return HTTPStatus.BAD_REQUEST
        if len(self.headers) > MAX_FIELDS:
            return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        for name, value in self.headers:
            # "Name: value" and its CRLF, as gunicorn counts a field's line.
            if len(name) + len(value) + 4 > MAX_FIELD_SIZE:
                return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        # "METHOD target HTTP/1.1"
        if len(self.parser.get_method()) + len(self.url) + 10 > MAX_REQUEST_LINE:
            return HTTPStatus.REQUEST_URI_TOO_LONG
        return None

    def on_message_complete(self) -> None:
        self._message_cycle = None
        self._reading_head = True
        self._receiving_since = None
        super().on_message_complete()

    def _too_slow(self) -> None:
        self._deadline = None
        since = self._receiving_since
        if since is None or self._refused:
            return
        due = since + self._timeout
        if self.loop.time() < due:  # a later request's: its own deadline is still to come
            self._deadline = self.loop.call_at(due, self._too_slow)
        else:
            self.logger.warning("Request timeout: not received whole within %gs.", self._timeout)
            self._refuse(HTTPStatus.REQUEST_TIMEOUT)

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer when the parser stops: on malformed bytes (400) or at
        # a refusal of this class's own.
        self._refuse(self._refusal, msg if self._refusal == HTTPStatus.BAD_REQUEST else None)

    def _refuse(self, status: HTTPStatus, text: str | None = None) -> None:
        self._refused = True
        broken = self._message_cycle
        if broken is not None and not broken.response_complete:
            queued = next((entry for entry in self.pipeline if entry[0] is broken), None)
            if queued is None:
                # The request being served sent the bytes: the answer is its own.
                if not broken.response_started:
                    self._answer(status, text)
                self._disconnect(broken)
                self.transport.close()
                return
            # Its body is broken: it is never served.
            self.pipeline.remove(queued)
            self._cycles.remove(broken)
        owed = [cycle for cycle in self._cycles if not cycle.response_complete]
        if owed:
            # uvicorn closes the connection once the last of them is answered.
            self.cycle = owed[-1]
            self.cycle.keep_alive = False
            return
        self._answer(status, text)
        self.transport.close()

    def _answer(self, status: HTTPStatus, text: str | None) -> None:
        body = (text or f"{status.phrase}.").encode("ascii")
        lines = [
            b"HTTP/1.1 %d %s" % (status, status.phrase.encode("ascii")),
            *(name + b": " + value for name, value in self.server_state.default_headers),
            b"content-type: text/plain; charset=utf-8",
            b"content-length: %d" % len(body),
            b"connection: close",
        ]
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        # uvicorn tells only the latest request; an earlier one still being
        # served would write to the closed transport.
        for cycle in self._cycles:
            self._disconnect(cycle)
        super().connection_lost(exc)

    @staticmethod
    def _disconnect(cycle: RequestResponseCycle) -> None:
        if not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()


class Worker(_UvicornWorker):  # type: ignore[misc]  # uvicorn-worker has no types
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "auto",
        "http": HttpProtocol,
        "lifespan": "on",
        # The service writes its own access line (docs/contract.md, section 5).
        "access_log": False,
        "server_header": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The stock worker ignores gunicorn's graceful_timeout: uvicorn would
        # wait for slow requests until gunicorn's SIGKILL, which skips the
        # lifespan shutdown that disposes the pool and exports the last spans.
        # gunicorn.py gives the master a margin beyond this.
        self.config.timeout_graceful_shutdown = math.ceil(get_settings().graceful_timeout)
