"""Requests received whole before a thread serves them (server.py).

gunicorn's threaded worker gives a connection to a thread as soon as it has
one byte, and the thread then waits for the rest of the request: a client
that sends slowly holds a thread, and ``WEB_THREADS`` of them hold them all,
probes included (docs/adversarial-findings.md, F5). Here the worker's event
loop collects each request's head and body first, without blocking; the
thread gets them with gunicorn's own parser, which reads them from memory.

What this module knows of HTTP is only where a request ends: gunicorn's
parser reads the head (``Request``) and checks everything else in the thread.
Where the bytes received so far are enough for that parser to refuse the
request, they are handed over at once rather than waited on.

The parser also gets two corrections of gunicorn 27's: ``Transfer-Encoding:
xchunked`` is 400, not 501 (F9), and a chunk-size line ending in a bare LF is
refused at once instead of waited on (F10).
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from gunicorn.http.body import Body
from gunicorn.http.body import ChunkedReader as _ChunkedReader
from gunicorn.http.errors import (
    InvalidChunkSize,
    InvalidHeader,
    NoMoreData,
    ParseException,
    UnsupportedTransferCoding,
)
from gunicorn.http.message import MAX_REQUEST_LINE
from gunicorn.http.message import Request as _Request
from gunicorn.http.parser import RequestParser as _RequestParser
from gunicorn.http.unreader import IterUnreader, SocketUnreader

BARE_LF = re.compile(rb"(?<!\r)\n")
# Without any of these fields a request has no body (or the parser refuses
# it), and its head need not be parsed on the loop.
FRAMING = re.compile(rb"\r\n(?:content-length|transfer-encoding|expect)", re.IGNORECASE)
HEX = re.compile(rb"[0-9A-Fa-f]+")
SOCKET_READ = 8192  # gunicorn's SocketUnreader reads a head this much at a time


class RequestTimeout(ParseException):  # type: ignore[misc]  # gunicorn has no types
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __str__(self) -> str:
        return f"no complete request within {self.seconds:g}s"


class ChunkedReader(_ChunkedReader):  # type: ignore[misc]
    def read_into(self, unreader: Any, buf: bytearray) -> None:
        # Asked for more only while the line has no CRLF: a bare LF can never
        # end a chunk-size line (RFC 9112 section 7.1), so more is never enough.
        if BARE_LF.search(buf):
            raise InvalidChunkSize(b"bare LF as line terminator")
        super().read_into(unreader, buf)


class Request(_Request):  # type: ignore[misc]
    body: Any

    def set_body_reader(self) -> None:
        try:
            super().set_body_reader()
        except UnsupportedTransferCoding:
            # gunicorn answers an unknown coding with 501 before it checks
            # RFC 9112 section 6.3: when chunked is not the final coding, the
            # framing is unknown and the answer MUST be 400.
            codings = ",".join(value for name, value in self.headers if name == "TRANSFER-ENCODING")
            if codings.rsplit(",", 1)[-1].strip(" \t").lower() != "chunked":
                raise InvalidHeader("TRANSFER-ENCODING", req=self) from None
            raise
        if type(self.body.reader) is _ChunkedReader:
            self.body = Body(ChunkedReader(self, self.unreader))


class Unreader(SocketUnreader):  # type: ignore[misc]
    """gunicorn's socket reader, serving first the bytes the event loop received.

    They are served a socket read's worth at a time, as from the socket: the
    parser checks its limits after each read, so a head over them is refused
    from these bytes alone.
    """

    def __init__(self, sock: Any) -> None:
        super().__init__(sock)
        self.received = memoryview(b"")
        self.deadline = 0.0
        self.seconds = 0.0

    def chunk(self, size_hint: int | None = None) -> bytes:
        if self.received:
            size = self.mxchunk
            if size_hint and size_hint > size:
                size = min(size_hint, self.max_body_chunk)
            piece, self.received = self.received[:size], self.received[size:]
            return bytes(piece)
        # Read only after a client ended its side (an end of file, at once);
        # should the parser want more another time, it waits only until the
        # request's deadline.
        self.sock.settimeout(max(self.deadline - time.monotonic(), 0.001))
        try:
            return bytes(super().chunk(size_hint))
        except TimeoutError:
            raise RequestTimeout(self.seconds) from None
        finally:
            self.sock.settimeout(None)

    def buffered(self) -> bool:
        """Whether bytes past the last request are here (pipelined)."""
        return bool(self.received) or self.buf.seek(0, os.SEEK_END) > 0

    def take_buffered(self) -> bytes:
        buffered = bytes(super().take_buffered()) + bytes(self.received)
        self.received = memoryview(b"")
        return buffered


class RequestParser(_RequestParser):  # type: ignore[misc]
    mesg_class = Request

    def __init__(self, cfg: Any, sock: Any, client: Any) -> None:
        super().__init__(cfg, sock, client)
        self.unreader = Unreader(sock)

    def hand_over(self, assembly: Assembly) -> None:
        """The parser reads the next request from ``assembly``'s bytes."""
        self.unreader.received = memoryview(bytes(assembly.buffer))
        self.unreader.deadline = assembly.deadline
        self.unreader.seconds = assembly.seconds


def head_limit(cfg: Any) -> int:
    """Bytes of a head past which gunicorn's parser refuses it (414 or 431),
    with two socket reads to spare: its limits, as it computes them."""
    limits = Request(cfg, IterUnreader((b"GET / HTTP/1.1\r\n\r\n",)), None)
    line = limits.limit_request_line or MAX_REQUEST_LINE
    return int(line + limits.max_buffer_headers + 2 * SOCKET_READ)


class Assembly:
    """The bytes of a connection's next request, received on the event loop.

    ``complete()`` says when they are enough for a thread: the whole head and
    the whole body, or enough for the parser to refuse them (a bare LF, a
    head over the limits, a malformed body), or a body over the limit, which
    the application refuses (413) without waiting for the rest.
    """

    def __init__(
        self,
        cfg: Any,
        client: Any,
        number: int,
        received: bytes,
        *,
        seconds: float,
        max_body: int,
        head_limit: int,
    ) -> None:
        self.cfg = cfg
        self.client = client
        self.number = number  # the request's number on the connection (PROXY protocol)
        self.buffer = bytearray(received)
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.max_body = max_body
        self.head_limit = head_limit
        self.registered = False  # with the worker's poller
        self.expects_continue = False
        self.head_end = -1
        self.searched = 0  # for the head's blank line
        self.unchecked = 0  # for a bare LF in the head
        self.body_end = 0
        self.chunks: Chunks | None = None

    def complete(self) -> bool:
        if self.head_end < 0 and not self._head():
            bare_lf = BARE_LF.search(self.buffer, self.unchecked) is not None
            self.unchecked = len(self.buffer)
            return bare_lf or len(self.buffer) > self.head_limit
        if self.chunks is not None:
            return self.chunks.complete(self.buffer)
        return len(self.buffer) >= self.body_end

    def _head(self) -> bool:
        """Whether the head is here; gunicorn's parser reads it for the body's framing."""
        while (end := self.buffer.find(b"\r\n\r\n", max(self.searched - 3, 0))) >= 0:
            self.searched = end + 4
            head = bytes(self.buffer[: end + 4])
            if not FRAMING.search(head) and self.cfg.proxy_protocol == "off":
                self.head_end = self.body_end = end + 4
                return True
            try:
                request = Request(self.cfg, IterUnreader((head,)), self.client, self.number)
            except NoMoreData:  # the blank line was inside a PROXY protocol header
                continue
            except Exception:  # refused: the thread's parser refuses it the same way
                self.head_end = self.body_end = end + 4
                return True
            self.head_end = end + 4
            self.expects_continue = request._expected_100_continue
            reader = request.body.reader
            if isinstance(reader, _ChunkedReader):
                self.chunks = Chunks(
                    self.head_end,
                    self.max_body,
                    line_limit=reader.limit_chunk_size_line,
                    trailer_limit=reader.limit_trailer_section,
                )
            elif reader.length <= self.max_body:
                self.body_end = self.head_end + reader.length
            else:  # refused (413) without reading it
                self.body_end = self.head_end
            return True
        self.searched = len(self.buffer)
        return False

    @property
    def continue_due(self) -> bool:
        """The client waits for 100 (Continue) to send the body (RFC 9110 section 10.1.1)."""
        return self.expects_continue and self.head_end == len(self.buffer)


class Chunks:
    """Where a chunked body ends (RFC 9112 section 7.1), found as its bytes
    arrive; gunicorn's ``ChunkedReader`` checks the rest in the thread."""

    def __init__(self, start: int, max_body: int, *, line_limit: int, trailer_limit: int) -> None:
        self.at = start  # the next chunk-size line, then the trailer section
        self.searched = start
        self.data = 0  # chunk data so far
        self.trailers = False
        self.max_body = max_body
        self.line_limit = line_limit
        self.trailer_limit = trailer_limit

    def complete(self, buffer: bytearray) -> bool:
        while not self.trailers:
            end = buffer.find(b"\r\n", self.searched)
            if end < 0:
                self.searched = max(len(buffer) - 1, self.at)
                return (
                    len(buffer) - self.at > self.line_limit
                    or BARE_LF.search(buffer, self.at) is not None
                )
            self.searched = end
            size, *extension = bytes(buffer[self.at : end]).split(b";", 1)
            if extension:  # as gunicorn: whitespace before an extension only
                size = size.rstrip(b" \t")
            if not HEX.fullmatch(size):
                return True
            start, length = end + 2, int(size, 16)
            if length == 0:
                self.trailers = True
                self.at = self.searched = start
                break
            # The application reads one byte past the limit, then answers 413.
            if self.data + min(length, len(buffer) - start) > self.max_body:
                return True
            if len(buffer) < start + length + 2:
                return False
            if buffer[start + length : start + length + 2] != b"\r\n":
                return True
            self.data += length
            self.at = self.searched = start + length + 2
        if buffer.startswith(b"\r\n", self.at):
            return True
        if buffer.find(b"\r\n\r\n", max(self.searched - 3, self.at)) >= 0:
            return True
        self.searched = len(buffer)
        return (
            len(buffer) - self.at > self.trailer_limit
            or BARE_LF.search(buffer, self.at) is not None
        )
