"""A raw-socket HTTP/1.1 client for requests no well-behaved library sends.

It writes exactly the bytes it is given (malformed request lines, lying
framing headers, broken chunked bodies, trickled headers) and reads whatever
comes back within a deadline: an answer, a clean close, a reset, or nothing.
Every read and write has a timeout, so an exchange always ends by itself.
Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# How an exchange ended, when it ended without a complete response.
CLOSED = "closed"  # the server closed the connection cleanly (FIN), no answer
RESET = "reset"  # the connection was reset (RST)
TIMEOUT = "timeout"  # nothing (or no complete answer) before the deadline
GARBLED = "garbled"  # bytes came back, but no HTTP/1.x response

HEAD_LIMIT = 256 * 1024  # more than any server's response head


class Pause:
    """Between parts of a request: the client waits this many seconds."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"Pause({self.seconds})"


class HalfClose:
    """The client shuts down its sending side (FIN) and keeps reading."""

    def __repr__(self) -> str:
        return "HalfClose()"


Part = bytes | Pause | HalfClose


@dataclass
class Reply:
    """What came back for one request written on a raw connection."""

    status: int | None = None
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # None when a complete response arrived; otherwise CLOSED, RESET, TIMEOUT or GARBLED.
    ended: str | None = None
    # The server closed the connection after the response (or said it would).
    closes: bool = False
    elapsed: float = 0.0
    raw: bytes = b""
    sent_all: bool = True

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((value for key, value in self.headers if key.lower() == name), None)

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]

    def json(self) -> Any:
        return json.loads(self.body)

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.ended}) after {self.elapsed:.2f}s; raw={self.raw[:200]!r}"
        return f"{self.status} {self.reason} after {self.elapsed:.2f}s; body={self.body[:300]!r}"


class ResponseReader:
    """Reads responses from a socket into a buffer, one at a time, by a deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.eof = False
        self.failure: str | None = None

    def _fill(self, deadline: float) -> bool:
        """One more read; False when the connection ended or the deadline passed."""
        if self.eof or self.failure:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            self.failure = TIMEOUT
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            self.failure = TIMEOUT
            return False
        except OSError as error:
            if error.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
                self.failure = RESET
                return False
            raise
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def _ended(self) -> str:
        return self.failure or (CLOSED if self.eof else TIMEOUT)

    def read(self, deadline: float, method: str = "GET") -> Reply:
        reply = Reply()
        # The head, skipping interim (1xx) responses.
        while True:
            while b"\r\n\r\n" not in self.buffer:
                if len(self.buffer) > HEAD_LIMIT:
                    reply.ended, reply.raw = GARBLED, self.buffer
                    return reply
                if not self._fill(deadline):
                    reply.ended, reply.raw = self._ended(), self.buffer
                    return reply
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            reply.raw = head + b"\r\n\r\n"
            lines = head.decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            code, _, reason = rest.partition(" ")
            if not version.startswith("HTTP/") or not code.isdigit():
                reply.ended = GARBLED
                return reply
            reply.status, reply.reason = int(code), reason
            reply.headers = [
                (name.strip(), value.strip())
                for name, _, value in (line.partition(":") for line in lines[1:])
            ]
            if not 100 <= reply.status < 200 or reply.status == 101:
                break
        connection = ",".join(reply.header_values("connection")).lower()
        reply.closes = "close" in connection or version == "HTTP/1.0"
        # The body, framed as RFC 9112 section 6.3 says.
        if method == "HEAD" or reply.status in (204, 304) or 100 <= reply.status < 200:
            return reply
        coding = ",".join(reply.header_values("transfer-encoding")).lower()
        length = reply.header("content-length")
        if "chunked" in coding:
            self._read_chunked(reply, deadline)
        elif length is not None and length.isdigit():
            wanted = int(length)
            while len(self.buffer) < wanted and self._fill(deadline):
                pass
            reply.body, self.buffer = self.buffer[:wanted], self.buffer[wanted:]
            if len(reply.body) < wanted:
                reply.ended = self._ended()
        else:
            while self._fill(deadline):
                pass
            reply.body, self.buffer = self.buffer, b""
            reply.closes = True
            if self.failure:
                reply.ended = self.failure
        return reply

    def _read_chunked(self, reply: Reply, deadline: float) -> None:
        body = b""
        while True:
            while b"\r\n" not in self.buffer:
                if not self._fill(deadline):
                    reply.body, reply.ended = body, self._ended()
                    return
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while b"\r\n\r\n" not in b"\r\n" + self.buffer:
                    if not self._fill(deadline):
                        break
                _, _, self.buffer = (b"\r\n" + self.buffer).partition(b"\r\n\r\n")
                reply.body = body
                return
            while len(self.buffer) < size + 2:
                if not self._fill(deadline):
                    reply.body, reply.ended = body + self.buffer, self._ended()
                    return
            body += self.buffer[:size]
            self.buffer = self.buffer[size + 2 :]

    def closed_within(self, deadline: float) -> str:
        """After a response: CLOSED or RESET once the server ends the connection,
        TIMEOUT if it keeps it open past ``deadline``, "data" if it sends more."""
        while not self.buffer:
            if not self._fill(deadline):
                return self._ended()
        return "data"


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def send_parts(sock: socket.socket, parts: Iterable[Part], deadline: float) -> bool:
    """Write the parts, pausing where asked; False if the server stopped taking them."""
    for part in parts:
        if isinstance(part, Pause):
            time.sleep(max(0.0, min(part.seconds, deadline - time.monotonic())))
            continue
        if isinstance(part, HalfClose):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
            continue
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            sock.sendall(part)
        except (TimeoutError, OSError):
            return False
    return True


def exchange(
    port: int,
    request: bytes | Iterable[Part],
    timeout: float = 5.0,
    method: str | None = None,
) -> Reply:
    """Write ``request`` (bytes, or parts with pauses) on a new connection and
    read one response, all within ``timeout`` seconds.

    The response is read only once the request is written: a server that
    answers early (a 400 before the body) leaves its answer in the socket.
    """
    parts = [request] if isinstance(request, bytes) else list(request)
    if method is None:
        first = next((p for p in parts if isinstance(p, bytes) and p), b"")
        method = first.split(b" ", 1)[0].decode("latin-1")
    started = time.monotonic()
    deadline = started + timeout
    with contextlib.closing(connect(port, timeout)) as sock:
        sent_all = send_parts(sock, parts, deadline)
        reply = ResponseReader(sock).read(deadline, method)
    reply.sent_all = sent_all
    reply.elapsed = time.monotonic() - started
    return reply


def get_request(path: str, *fields: str) -> bytes:
    """A plain ``GET`` on a connection the server is asked to close."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *fields, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Probe:
    """One timed request: when it started (``time.monotonic()``) and how it went."""

    path: str
    started: float
    reply: Reply

    @property
    def seconds(self) -> float:
        return self.reply.elapsed

    def ok_within(self, seconds: float) -> bool:
        return self.reply.status == 200 and self.reply.elapsed <= seconds

    def __str__(self) -> str:
        outcome = self.reply.status or self.reply.ended
        return f"{self.path} {outcome} in {self.reply.elapsed:.2f}s"


def probe(port: int, path: str, timeout: float = 3.0) -> Probe:
    """``GET path`` on a new connection, timed; a failure is recorded, not raised."""
    started = time.monotonic()
    try:
        reply = exchange(port, get_request(path), timeout=timeout)
    except OSError as error:  # refused, or the connect itself timed out
        reply = Reply(ended=type(error).__name__, elapsed=time.monotonic() - started)
    return Probe(path, started, reply)


def probe_for(
    port: int, paths: Iterable[str], seconds: float, every: float = 0.25, timeout: float = 3.0
) -> list[Probe]:
    """Probe each of ``paths`` in turn, every ``every`` seconds, for ``seconds``."""
    paths = list(paths)
    probes: list[Probe] = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        probes += [probe(port, path, timeout) for path in paths]
        time.sleep(every)
    return probes


class SlowClients:
    """``count`` clients that each open a connection, write ``first`` and then
    ``step(n)`` every ``every`` seconds, never finishing their request, until
    the block ends: what a slowloris attack or a client on a bad network does.

    Each client runs in a thread of its own; leaving the block stops and
    closes them all.
    """

    def __init__(
        self,
        port: int,
        count: int,
        first: bytes,
        step: Callable[[int], bytes],
        every: float,
    ) -> None:
        self.port = port
        self.count = count
        self.first = first
        self.step = step
        self.every = every
        self.stopping = threading.Event()
        self.connected = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads = [
            threading.Thread(target=self._run, name=f"slow-client-{n}", daemon=True)
            for n in range(count)
        ]

    def _run(self) -> None:
        try:
            sock = connect(self.port, timeout=5.0)
        except OSError as error:
            with self._lock:
                self.failures.append(f"connect: {error!r}")
            return
        with self._lock:
            self._sockets.append(sock)
            self.connected += 1
        try:
            sock.sendall(self.first)
            sent = 0
            while not self.stopping.wait(self.every):
                sock.sendall(self.step(sent))
                sent += 1
        except OSError as error:
            if not self.stopping.is_set():
                with self._lock:
                    self.failures.append(f"send: {error!r}")

    def __enter__(self) -> SlowClients:
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + 5.0
        while self.connected + len(self.failures) < self.count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
        for thread in self._threads:
            thread.join(timeout=5.0)
