"""A fault-injecting TCP proxy between a service and its PostgreSQL database.

It runs an asyncio loop in a background thread and forwards bytes both ways.
Its mode decides what happens to connections:

- ``pass``: forward, after ``latency`` seconds in each direction;
- ``blackhole``: the database's host is gone and its packets are dropped:
  open connections stay open but nothing crosses them either way, and new
  ones are accepted and never answered. Only the client's own deadlines end
  its waits (the proxy's kernel acknowledges every byte, so TCP keepalives
  and ``tcp_user_timeout`` never fire here);
- ``refuse``: close the listening socket (new connections are refused) and
  reset open ones;
- ``reset``: reset every open connection and each new one at once.

Delays come from the network path, so a slow request is slow for the reason
a real one is: the database's answers take long to arrive.

Every connection is recorded (``links()``): when it opened and closed, how
the client ended it, and when the client sent PostgreSQL's Terminate message
(``X``), which a client that closes its connection properly sends last and a
killed process never sends. Times are ``time.monotonic()``.

Standard library only: the kit's tests use this module, and every generated
project carries a verbatim copy (``tests/resilience/``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

MODES = ("pass", "blackhole", "refuse", "reset")

# Request codes of the untyped messages a client may send first.
_SSL_REQUEST, _GSSENC_REQUEST, _CANCEL_REQUEST = 80877103, 80877104, 80877102


@dataclasses.dataclass
class LinkRecord:
    """One connection through the proxy, as the proxy saw it."""

    opened: float
    kind: str = "session"  # or "cancel": a CancelRequest, which ends without Terminate
    terminated: float | None = None  # the client's Terminate message arrived
    closed: float | None = None
    # "eof" (the client closed it), "reset" (the client reset it), "server"
    # (the server reset it), "proxy" (a fault mode or the proxy's shutdown).
    ended: str = ""
    last_answer: float | None = None  # the last bytes from the server reached the client
    # The simple-protocol queries the client sent (what psycopg sends without
    # parameters: connection checks, BEGIN, ROLLBACK), by their text.
    queries: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    @property
    def graceful(self) -> bool:
        """Closed by the client after its Terminate message, as libpq's close does."""
        return self.terminated is not None and self.ended == "eof"


class _FrontendMessages:
    """Splits what the client sends into PostgreSQL protocol messages, to spot
    the Terminate message (``X`` and a length of 4). The server is plain TCP
    here: it declines SSL and GSS encryption, so every byte is readable."""

    def __init__(self, record: LinkRecord) -> None:
        self.record = record
        self.pending = bytearray()
        self.skip = 0  # bytes of the current message not yet received
        self.startup = True  # before the startup message: untyped messages

    def feed(self, data: bytes) -> None:
        if self.record.kind != "session":
            return
        if self.skip >= len(data):
            self.skip -= len(data)
            return
        self.pending += data[self.skip :]
        self.skip = 0
        offset = 0
        while True:
            if self.startup:
                if len(self.pending) - offset < 8:
                    break
                length, code = struct.unpack_from("!ii", self.pending, offset)
                if code == _CANCEL_REQUEST:
                    self.record.kind = "cancel"
                    break
                # After an SSL or GSS request refused with "N", the startup
                # message itself follows.
                self.startup = code in (_SSL_REQUEST, _GSSENC_REQUEST)
                size = length
            else:
                if len(self.pending) - offset < 5:
                    break
                (length,) = struct.unpack_from("!i", self.pending, offset + 1)
                if self.pending[offset] == ord("X") and length == 4:
                    self.record.terminated = time.monotonic()
                size = 1 + length
                if self.pending[offset] == ord("Q") and len(self.pending) - offset >= size:
                    text = bytes(self.pending[offset + 5 : offset + size]).rstrip(b"\0")
                    self.record.queries[text.decode(errors="replace")] += 1
            if len(self.pending) - offset < size:
                self.skip = size - (len(self.pending) - offset)
                offset = len(self.pending)
                break
            offset += size
        del self.pending[:offset]


class _Link:
    """One proxied connection: the client side, the upstream side and two pumps."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.record = LinkRecord(opened=time.monotonic())

    def abort(self) -> None:
        if not self.record.ended:
            self.record.ended = "proxy"
        for writer in (self.client, self.upstream):
            if writer is not None:
                _reset(writer)
        for task in self.tasks:
            task.cancel()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a crashed peer or a firewall would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode = "pass"
        self.latency = 0.0
        self.accepted = 0
        self._links: set[_Link] = set()
        self._records: list[LinkRecord] = []
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._held = asyncio.Event()  # set while forwarding is allowed
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._call(self._set_forwarding(True))
        self._call(self._listen())

    # --- control, from the test's thread -------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def set_mode(self, mode: str, latency: float | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self._call(self._apply(mode, latency))

    def reset_all(self) -> None:
        """Reset every open connection (the mode stays as it is)."""
        self._call(self._reset_links())

    @property
    def open_connections(self) -> int:
        return len(self._links)

    def links(self) -> list[LinkRecord]:
        """Every connection accepted so far, oldest first (copies)."""
        return [dataclasses.replace(record) for record in list(self._records)]

    def close(self) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    # --- the loop's side ------------------------------------------------------------

    async def _set_forwarding(self, allowed: bool) -> None:
        if allowed:
            self._held.set()
        else:
            self._held.clear()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    async def _unlisten(self) -> None:
        """Stop listening at once; open connections are left to the mode."""
        if self._server is not None:
            self._server.close()  # closes the listening socket now
            self._server = None

    async def _apply(self, mode: str, latency: float | None) -> None:
        if latency is not None:
            self.latency = latency
        self.mode = mode
        await self._set_forwarding(mode == "pass")
        if mode == "refuse":
            await self._unlisten()
        else:
            await self._listen()
        if mode in ("refuse", "reset"):
            await self._reset_links()

    async def _reset_links(self) -> None:
        for link in list(self._links):
            link.abort()
        self._links.clear()

    async def _shutdown(self) -> None:
        await self._unlisten()
        await self._reset_links()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(writer)
        record = link.record
        self._records.append(record)
        if self.mode == "reset":
            link.abort()
            record.closed = time.monotonic()
            return
        self._links.add(link)
        messages = _FrontendMessages(record)

        def from_client(data: bytes) -> None:
            if data:
                messages.feed(data)
            elif not record.ended:
                record.ended = "eof"

        def answered() -> None:
            record.last_answer = time.monotonic()

        try:
            await self._held.wait()  # a blackholed connection waits here, unanswered
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            link.upstream = up_writer
            link.tasks = [
                asyncio.create_task(self._pump(reader, up_writer, received=from_client)),
                asyncio.create_task(self._pump(up_reader, writer, delivered=answered)),
            ]
            done, _ = await asyncio.wait(link.tasks, return_when=asyncio.FIRST_EXCEPTION)
            failed = [t for t in done if not t.cancelled() and t.exception() is not None]
            if failed and not record.ended:
                record.ended = "reset" if failed[0] is link.tasks[0] else "server"
            # A side that was reset resets the other one too, as it would without
            # a proxy in between; a clean end (EOF) was passed on as one.
            if failed:
                link.abort()
            await asyncio.gather(*link.tasks, return_exceptions=True)
        except (OSError, asyncio.CancelledError):
            link.abort()
        finally:
            record.closed = time.monotonic()
            self._links.discard(link)
            for side in (writer, link.upstream):
                if side is not None and not side.is_closing():
                    side.close()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        received: Callable[[bytes], None] | None = None,
        delivered: Callable[[], None] | None = None,
    ) -> None:
        """Copy bytes, each chunk delivered ``latency`` after it arrived, in order."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                arrived, data = await queue.get()
                if not data:
                    writer.write_eof() if writer.can_write_eof() else writer.close()
                    return
                delay = arrived + self.latency - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._held.wait()
                writer.write(data)
                await writer.drain()
                if delivered is not None:
                    delivered()

        delivery = asyncio.create_task(deliver())
        try:
            while True:
                data = await reader.read(65536)
                if received is not None:
                    received(data)
                await self._held.wait()
                queue.put_nowait((time.monotonic(), data))
                if not data:
                    break
            await delivery
        except (OSError, asyncio.CancelledError):
            delivery.cancel()
            raise
