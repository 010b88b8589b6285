"""The threaded worker (``runtime/server.py``, ``runtime/assembly.py``) in this
process, on a port of its own, serving a WSGI application of a few lines:
requests are received whole before a thread serves them, slow clients get
408 at their deadline and hold no thread meanwhile, and gunicorn's parser
refuses ``xchunked`` and bare-LF chunk lines with 400."""

from __future__ import annotations

import os
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.http.errors import (
    InvalidChunkSize,
    InvalidHeader,
    LimitRequestHeaders,
    NoMoreData,
    UnsupportedTransferCoding,
)
from gunicorn.http.unreader import IterUnreader

from . import runtime_module

server, assembly = runtime_module("server"), runtime_module("assembly")

LIMIT = 1000  # MAX_REQUEST_BODY_BYTES of the worker under test
STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")  # bodies here never hold it


class Log:
    """gunicorn's logger, as far as the worker calls it: lines kept, not written."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def access(self, *args: object) -> None:
        pass

    def __getattr__(self, level: str) -> Callable[..., None]:
        def record(message: object = "", *args: object, **kwargs: object) -> None:
            self.lines.append(f"{level}: " + (str(message) % args if args else str(message)))

        return record


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answers "<method> <path> <body length>"; ``/slow`` takes half a second.
    A body over the limit is refused unread, as the frameworks do."""
    if int(environ.get("CONTENT_LENGTH") or 0) > LIMIT:
        start_response("413 Content Too Large", [("Content-Length", "0")])
        return []
    body = environ["wsgi.input"].read()
    if environ["PATH_INFO"] == "/slow":
        time.sleep(0.5)
    text = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} {len(body)}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))])
    return [text]


@dataclass
class Running:
    worker: Any
    port: int
    log: Log
    stopped: threading.Thread


@contextmanager
def running(monkeypatch: pytest.MonkeyPatch, deadline: float = 5.0) -> Iterator[Running]:
    """A worker with three threads, as gunicorn runs it after fork (init_process
    without the signal handlers), stopped as by SIGTERM at the end."""
    monkeypatch.setattr(server, "_exit_callbacks", [])
    listener = socket.create_server(("127.0.0.1", 0))
    cfg = Config()
    cfg.set("threads", 3)
    cfg.set("graceful_timeout", 5)
    log = Log()
    worker = server.Worker(0, os.getppid(), [listener], None, 30, cfg, log)
    worker.wsgi, worker.max_body, worker.request_deadline = application, LIMIT, deadline
    worker.tpool = worker.get_thread_pool()
    worker.poller = selectors.DefaultSelector()
    worker.method_queue.init()
    loop = threading.Thread(target=worker.run, daemon=True)
    loop.start()
    try:
        yield Running(worker, listener.getsockname()[1], log, loop)
    finally:
        worker.handle_exit(None, None)
        loop.join(10)
        worker.tmp.close()
    assert not loop.is_alive()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def answer(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    received = b""
    while data := sock.recv(65536):
        received += data
    return received


def request(method: str, path: str, *fields: str, body: bytes = b"", close: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *fields]
    lines += ["Connection: close"] if close else []
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(body: bytes, size: int = 5) -> bytes:
    pieces = [body[at : at + size] for at in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def timed_get(port: int, path: str = "/probe") -> float:
    started = time.monotonic()
    with closing(connect(port)) as sock:
        sock.sendall(request("GET", path))
        received = answer(sock)
    assert STATUS.findall(received) == [b"200"], received
    return time.monotonic() - started


# --- Through the worker ------------------------------------------------------------------


def test_slow_clients_hold_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    with running(monkeypatch) as served:
        slow = [connect(served.port) for _ in range(8)]
        for n, sock in enumerate(slow):
            if n % 2:  # half a head, or a whole head and half its body
                sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: 1\r\n")
            else:
                sock.sendall(request("POST", "/", "Content-Length: 100", body=b"x" * 50))
        time.sleep(0.2)
        assert max(timed_get(served.port) for _ in range(5)) < 0.5
        for sock in slow:
            sock.close()


def test_a_request_incomplete_at_its_deadline_gets_408(monkeypatch: pytest.MonkeyPatch) -> None:
    with running(monkeypatch, deadline=0.5) as served:
        head, body, idle = (connect(served.port) for _ in range(3))
        head.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n")
        body.sendall(request("POST", "/", "Content-Length: 10", body=b"12345"))
        started = time.monotonic()
        for sock in (head, body):
            with closing(sock):
                assert STATUS.findall(answer(sock)) == [b"408"]
        assert 0.4 < time.monotonic() - started < 3
        with closing(idle):
            assert answer(idle) == b""  # no request begun: closed, unanswered
        assert sum("Request timeout" in line for line in served.log.lines) == 2


def test_requests_in_pieces_kept_alive_and_pipelined(monkeypatch: pytest.MonkeyPatch) -> None:
    with running(monkeypatch) as served, closing(connect(served.port)) as sock:
        whole = request("POST", "/length", "Content-Length: 10", body=b"0123456789", close=False)
        for at in (3, len(whole) - 12, len(whole) - 4):
            sock.sendall(whole[:at])
            time.sleep(0.05)
            whole = whole[at:]
        sock.sendall(whole)
        time.sleep(0.1)  # answered, and the connection kept
        body = chunked(b"chunked body")
        sock.sendall(
            request("POST", "/chunked", "Transfer-Encoding: chunked", body=body, close=False)
            + request("GET", "/pipelined", close=False)
            + request("POST", "/last", "Content-Length: 3", body=b"abc")
        )
        received = answer(sock)
    assert STATUS.findall(received) == [b"200"] * 4, received
    assert re.findall(rb"(?:GET|POST) /\w+ \d+", received) == [
        b"POST /length 10",
        b"POST /chunked 12",
        b"GET /pipelined 0",
        b"POST /last 3",
    ]


def test_the_client_waiting_for_100_continue_gets_it_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with running(monkeypatch) as served, closing(connect(served.port)) as sock:
        sock.sendall(request("POST", "/expect", "Expect: 100-continue", "Content-Length: 4"))
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"body")
        received = answer(sock)
    assert STATUS.findall(received) == [b"200"], received
    assert received.endswith(b"POST /expect 4")


def test_a_body_over_the_limit_is_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    with running(monkeypatch) as served, closing(connect(served.port)) as sock:
        started = time.monotonic()
        sock.sendall(request("POST", "/", f"Content-Length: {LIMIT + 1}", close=False))
        # Answered at once, and the connection closed: the body was not read.
        assert STATUS.findall(answer(sock)) == [b"413"]
        assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("coding", "body", "status"),
    [
        ("xchunked", chunked(b"{}"), b"400"),  # F9: RFC 9112 section 6.3
        ("chunked", b"2\n{}\n0\n\n", b"400"),  # F10: no CRLF will come
        ("gzip, chunked", chunked(b"{}"), b"200"),  # decoded by nobody, but framed
    ],
    ids=["not-a-coding", "chunk-lines-bare-lf", "gzip-then-chunked"],
)
def test_transfer_codings_and_chunk_lines_are_refused_at_once(
    monkeypatch: pytest.MonkeyPatch, coding: str, body: bytes, status: bytes
) -> None:
    with running(monkeypatch) as served, closing(connect(served.port)) as sock:
        started = time.monotonic()
        sock.sendall(request("POST", "/", f"Transfer-Encoding: {coding}", body=body))
        assert STATUS.findall(answer(sock)) == [status]
        assert time.monotonic() - started < 1


def test_closing_after_an_answer_does_not_block_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """gthread closes in its loop and waits there up to 2 s for the client to
    close its side; a client that keeps its socket open stalled every other."""
    with running(monkeypatch) as served:
        kept = [connect(served.port) for _ in range(3)]
        for sock in kept:
            sock.sendall(request("GET", "/closed"))
            assert STATUS.findall(answer(sock)) == [b"200"]  # and the server's FIN
        assert timed_get(served.port) < 0.5
        for sock in kept:
            sock.close()


def test_stopping_serves_the_request_in_flight_then_runs_on_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with running(monkeypatch) as served:
        ran: list[float] = []
        server.on_exit(lambda: ran.append(time.monotonic()))
        with closing(connect(served.port)) as sock:
            sock.sendall(request("GET", "/slow"))
            time.sleep(0.2)
            served.worker.handle_exit(None, None)
            received = answer(sock)
            answered = time.monotonic()
        served.stopped.join(5)
    assert received.endswith(b"GET /slow 0"), received
    assert ran
    assert ran[0] >= answered - 0.05


# --- Where a request ends (assembly.py) ------------------------------------------------------


def receiving() -> Any:
    """A request's bytes as the event loop collects them, none yet."""
    cfg = Config()
    return assembly.Assembly(
        cfg,
        ("127.0.0.1", 1),
        1,
        b"",
        seconds=10.0,
        max_body=LIMIT,
        head_limit=assembly.head_limit(cfg),
    )


def assembled(data: bytes) -> list[bool]:
    """``complete()`` after each byte of ``data``, received one at a time."""
    received = receiving()
    steps = []
    for byte in data:
        received.buffer.append(byte)
        steps.append(received.complete())
    return steps


@pytest.mark.parametrize(
    "message",
    [
        request("GET", "/"),
        request("GET", "/", body=b"GET /next HTTP/1.1\r\n"),  # what follows is the next request's
        request("POST", "/", "Content-Length: 5", body=b"12345"),
        request(
            "POST",
            "/",
            "Transfer-Encoding: chunked",
            body=b"5;name=value\r\n12345\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
        ),
    ],
    ids=["no-body", "no-body-then-more", "length", "chunked-with-extension-and-trailer"],
)
def test_a_request_is_complete_with_its_last_byte(message: bytes) -> None:
    end = message.index(b"GET /next") if b"GET /next" in message else len(message)
    steps = assembled(message)
    assert steps[: end - 1] == [False] * (end - 1)
    assert all(steps[end - 1 :])


@pytest.mark.parametrize(
    "message",
    [
        b"GET / HTTP/1.1\n",  # a bare LF: refused
        request("POST", "/", f"Content-Length: {LIMIT + 1}"),  # 413, unread
        request("POST", "/", "Transfer-Encoding: xchunked"),  # refused
        request("POST", "/", "Transfer-Encoding: chunked", body=b"zz\r\n"),
        request("POST", "/", "Transfer-Encoding: chunked", body=b"2\n"),
        request("POST", "/", "Transfer-Encoding: chunked", body=b"2\r\n{}XY"),
        # The application reads one byte past the limit, then answers 413.
        request("POST", "/", "Transfer-Encoding: chunked", body=b"%x\r\n" % (LIMIT + 1))
        + b"x" * (LIMIT + 1),
    ],
    ids=[
        "bare-lf-in-head",
        "length-over-limit",
        "unknown-coding",
        "chunk-size-not-hex",
        "chunk-line-bare-lf",
        "chunk-data-without-crlf",
        "chunked-over-limit",
    ],
)
def test_bytes_that_are_refused_or_too_many_are_not_waited_on(message: bytes) -> None:
    assert assembled(message) == [False] * (len(message) - 1) + [True]


def test_a_head_over_the_limits_is_handed_over_for_its_431() -> None:
    cfg = Config()
    head = b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"x" * assembly.head_limit(cfg)
    parser = assembly.RequestParser(cfg, socket.socket(), ("127.0.0.1", 1))
    with closing(parser.unreader.sock):
        received = receiving()
        received.buffer += head[: assembly.head_limit(cfg)]
        assert not received.complete()
        received.buffer += b"x"
        assert received.complete()
        parser.unreader.received = memoryview(head)
        with pytest.raises(LimitRequestHeaders):
            next(parser)  # from these bytes alone: the socket is never read


# --- gunicorn's parser, corrected (assembly.py) ----------------------------------------------


def parse(message: bytes) -> Any:
    return assembly.Request(Config(), IterUnreader((message,)), ("127.0.0.1", 1))


def test_a_request_whose_last_coding_is_not_chunked_is_400() -> None:
    with pytest.raises(InvalidHeader):  # gunicorn: 501
        parse(request("POST", "/", "Transfer-Encoding: xchunked"))
    with pytest.raises(InvalidHeader):
        parse(request("POST", "/", "Transfer-Encoding: chunked", "Transfer-Encoding: foo"))
    with pytest.raises(UnsupportedTransferCoding):  # RFC 9112 section 6.1: may be 501
        parse(request("POST", "/", "Transfer-Encoding: foo, chunked"))


def test_a_chunk_line_ending_in_a_bare_lf_is_refused_without_reading_on() -> None:
    body = b"17\n" + b'{"name": "bare line f"}' + b"\n0\n\n"
    with pytest.raises(InvalidChunkSize):
        parse(request("POST", "/", "Transfer-Encoding: chunked", body=body)).body.read()
    with pytest.raises(NoMoreData):  # the bytes run out first, as a socket would wait
        parse(request("POST", "/", "Transfer-Encoding: chunked", body=b"17\r")).body.read()
