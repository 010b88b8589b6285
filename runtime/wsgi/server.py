"""The gunicorn worker: gunicorn's threaded worker, adjusted for the
contract's shutdown (docs/contract.md, section 8) and for slow clients.

A WSGI application has no lifespan: what it must do once it is loaded (count
its routes, keep readiness current) it registers with ``on_start``, and what
it must do once its last request is done (wait for background work, close
the pool) with ``on_exit``; the worker runs the latter last registered first.

A thread gets a request only once the worker's event loop has received it
whole (assembly.py): a client that sends slowly holds a connection, never a
thread, and gets 408 after REQUEST_TIMEOUT seconds. Closing a connection
after its response, which gunicorn does in the loop and blocking (up to 2 s
for a client that does not close its side), is done without blocking.
"""

from __future__ import annotations

import heapq
import itertools
import math
import selectors
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.http.body import ChunkedReader
from gunicorn.http.errors import InvalidHeader
from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker

from .assembly import Assembly, RequestParser, RequestTimeout, head_limit
from .config import get_settings

RECEIVE = 65536  # bytes per read on the event loop
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# A connection closed after its response is read from and discarded until the
# client closes it too, as gunicorn's util.close_graceful does (RFC 9112
# section 9.6): for this many seconds and bytes at most.
LINGER_SECONDS = 2.0
LINGER_BYTES = 65536

_start_callbacks: list[Callable[[], None]] = []
_exit_callbacks: list[Callable[[], None]] = []


def on_start(callback: Callable[[], None]) -> None:
    """Run ``callback`` once this worker has loaded the application, before its
    first request (the application is complete: every route is registered)."""
    _start_callbacks.append(callback)


def on_exit(callback: Callable[[], None]) -> None:
    """Run ``callback`` when this worker stops, after its last request."""
    _exit_callbacks.append(callback)


class Lingering:
    """A connection closing after its response, or after a 408."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + LINGER_SECONDS
        self.drained = 0
        self.registered = False


class Worker(_ThreadWorker):  # type: ignore[misc]  # gunicorn has no types
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The loop reads plain HTTP/1.1; with TLS or HTTP/2 cleartext (set in
        # gunicorn.conf.py), the threads read requests as in gthread.
        self.assembles = not self.cfg.is_ssl and self.cfg.http2_cleartext == "off"
        # Seconds a client has to send a whole request, head and body, counted
        # from when the worker starts waiting for it: the connection's opening,
        # a kept-alive connection's first byte, or the end of the answer before
        # a pipelined one (REQUEST_TIMEOUT; set after fork, init_process).
        self.request_deadline = 10.0
        self.head_limit = head_limit(self.cfg)
        # Connections the loop itself holds, and when it stops holding them.
        self.held: dict[Any, Assembly | Lingering] = {}
        self.deadlines: list[tuple[float, int, Any, Assembly | Lingering]] = []
        self.order = itertools.count()

    def init_process(self) -> None:
        # Runs in the worker, after fork. gunicorn.py gives the master
        # GRACEFUL_TIMEOUT plus a margin before its SIGKILL; the worker waits
        # only GRACEFUL_TIMEOUT for in-flight requests, so its clean-up
        # (on_exit callbacks, then worker_exit: spans) always runs.
        settings = get_settings()
        self.cfg.set("graceful_timeout", math.ceil(settings.graceful_timeout))
        self.max_body = settings.max_request_body_bytes
        self.request_deadline = settings.request_timeout
        if not self.assembles:
            self.log.warning("TLS or HTTP/2 cleartext: slow clients can hold every thread")
        super().init_process()

    def handle_request(self, req: Any, conn: Any) -> bool:
        host, declared = False, ""
        for name, value in req.headers:
            if name == "HOST":
                host = True
            elif name == "CONTENT-LENGTH" and not declared:
                declared = value
        if req.version >= (1, 1) and not host:
            # RFC 9112, section 3.2: an HTTP/1.1 request without Host is a 400,
            # answered as gunicorn answers its other malformed requests.
            raise InvalidHeader("HOST")
        # A body above MAX_REQUEST_BODY_BYTES gets 413 without being read, and
        # gunicorn drops a connection whose unread body it cannot drain (it
        # gives up after 64 KiB): the 413 must say "Connection: close", or the
        # client's next request on that connection finds it gone.
        if declared.isdigit() and int(declared) > self.max_body:
            req.force_close()
        elif isinstance(reader := getattr(req.body, "reader", None), ChunkedReader):
            # A chunked body's size is known only once it is read: the
            # connection is kept after the response only if the application
            # read the body to its end. gunicorn asks when it writes the headers.
            closes = req.should_close
            req.should_close = lambda: closes() or getattr(reader, "parser", None) is not None
        if self.assembles:
            # The loop answered the expectation while it waited for the body
            # (_receive); the body is here now, or refused unread.
            req._expected_100_continue = False
        return bool(super().handle_request(req, conn))

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        if not isinstance(exc, RequestTimeout):
            super().handle_error(req, client, addr, exc)
            return
        self.log.warning("Request timeout from ip=%s: %s", (addr or ("",))[0], exc)
        try:
            util.write_error(client, 408, "Request Timeout", str(exc))
        except Exception:
            self.log.debug("Failed to send error message.")

    # --- Requests received on the event loop -------------------------------------------

    def enqueue_req(self, conn: Any) -> None:
        """Receive the connection's next request; a thread gets it once it is whole.

        gthread calls this for a new connection and for a kept-alive one that
        became readable; pipelined bytes left from the last request come here too.
        """
        if not self.assembles:
            super().enqueue_req(conn)
            return
        if conn.parser is None:
            conn.parser = RequestParser(self.cfg, conn.sock, conn.client)
        assembly = Assembly(
            self.cfg,
            conn.client,
            conn.parser.req_count + 1,
            conn.parser.unreader.take_buffered(),
            seconds=self.request_deadline,
            max_body=self.max_body,
            head_limit=self.head_limit,
        )
        self.held[conn] = assembly
        if assembly.complete():
            self._hand_over(conn, assembly)
        else:
            # Often already there: the request came with the connection, or
            # made the kept-alive connection readable.
            self._receive(conn)

    def _receive(self, conn: Any, _: Any = None) -> None:
        assembly = self.held.get(conn)
        if not isinstance(assembly, Assembly):
            return  # handed over or closed while this event waited in the same batch
        try:
            data = conn.sock.recv(RECEIVE)
        except BlockingIOError:
            self._wait(conn, assembly)
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            # The client closed its side. What it sent goes to the parser,
            # which answers an incomplete request as gthread always has.
            if assembly.buffer:
                self._hand_over(conn, assembly)
            else:
                self._close(conn)
            return
        assembly.buffer += data
        if assembly.complete():
            self._hand_over(conn, assembly)
            return
        if assembly.continue_due:
            assembly.expects_continue = False
            try:
                sent = conn.sock.send(CONTINUE)
            except OSError:
                sent = 0
            if sent != len(CONTINUE):
                self._close(conn)
                return
        self._wait(conn, assembly)

    def _wait(self, conn: Any, assembly: Assembly) -> None:
        if not assembly.registered:
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._receive, conn))
            assembly.registered = True
            self._expires(conn, assembly)

    def _hand_over(self, conn: Any, assembly: Assembly) -> None:
        del self.held[conn]
        if assembly.registered:
            self.poller.unregister(conn.sock)
        conn.parser.hand_over(assembly)
        conn.data_ready = True
        super().enqueue_req(conn)

    def _expires(self, conn: Any, state: Assembly | Lingering) -> None:
        heapq.heappush(self.deadlines, (state.deadline, next(self.order), conn, state))

    def murder_keepalived(self, force: bool = False) -> None:
        # Called by gthread's loop on every turn, at least once a second.
        super().murder_keepalived(force)
        now = time.monotonic()
        while self.deadlines and (force or self.deadlines[0][0] <= now):
            _, _, conn, state = heapq.heappop(self.deadlines)
            if self.held.get(conn) is not state:
                continue  # handed over or closed since, or given a new deadline
            if isinstance(state, Assembly) and state.buffer and not force:
                self.handle_error(None, conn.sock, conn.client, RequestTimeout(state.seconds))
                self._linger(conn)
            else:
                self._close(conn)

    def _cap_keepalive(self, deadline: float) -> None:
        # Stopping: a connection that has sent nothing yet is kept no longer
        # than a kept-alive one.
        super()._cap_keepalive(deadline)
        for conn, state in list(self.held.items()):
            if isinstance(state, Assembly) and not state.buffer and state.deadline > deadline:
                state.deadline = deadline
                self._expires(conn, state)

    # --- Closing without blocking the loop ---------------------------------------------

    def finish_request(self, conn: Any, fs: Future[Any]) -> None:
        if not self.assembles:
            super().finish_request(conn, fs)
            return
        try:
            keep = not fs.cancelled() and bool(fs.result())
        except Exception:
            keep = False
        if not keep:
            self._linger(conn)
        elif conn.parser.unreader.buffered():
            # Pipelined: the next request is received like any other.
            conn.sock.setblocking(False)
            self.enqueue_req(conn)
        else:
            super().finish_request(conn, fs)  # kept alive, in gthread's keep-alive poll

    def _linger(self, conn: Any) -> None:
        state = self.held.get(conn)
        if isinstance(state, Assembly) and state.registered:
            self.poller.unregister(conn.sock)
        lingering = self.held[conn] = Lingering()
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._discard, conn))
        except (OSError, ValueError):
            self._close(conn)
            return
        lingering.registered = True
        self._expires(conn, lingering)

    def _discard(self, conn: Any, _: Any = None) -> None:
        lingering = self.held.get(conn)
        if not isinstance(lingering, Lingering):
            return
        try:
            data = conn.sock.recv(RECEIVE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        lingering.drained += len(data)
        if not data or lingering.drained >= LINGER_BYTES:
            self._close(conn)

    def _close(self, conn: Any) -> None:
        state = self.held.pop(conn, None)
        if state is None:
            return
        if state.registered:
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    # --- Stopping ----------------------------------------------------------------------

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
        for callback in _start_callbacks:
            callback()
        try:
            super().run()
        finally:
            while _exit_callbacks:
                _exit_callbacks.pop()()
