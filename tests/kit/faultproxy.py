"""A fault-injecting TCP proxy between a service and its database.

It runs an asyncio loop in a background thread and forwards bytes both ways.
Its mode decides what happens to connections:

- ``pass``: forward, after ``latency`` seconds in each direction;
- ``blackhole``: reset open connections (the database died) and accept new
  ones without ever answering them (its address now drops every packet), so
  only the client's connect timeout ends the wait;
- ``refuse``: close the listening socket, so new connections are refused;
- ``reset``: reset every open connection and each new one at once.

Delays come from the network path, so a slow request is slow for the reason
a real one is: the database's answers take long to arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from typing import Any

MODES = ("pass", "blackhole", "refuse", "reset")


class _Link:
    """One proxied connection: the client side, the upstream side and two pumps."""

    def __init__(self, proxy: FaultProxy, client: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def abort(self) -> None:
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
            await self._reset_links()
        else:
            await self._listen()
        if mode in ("reset", "blackhole"):
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
        link = _Link(self, writer)
        if self.mode == "reset":
            link.abort()
            return
        self._links.add(link)
        try:
            await self._held.wait()  # a blackholed connection waits here, unanswered
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            link.upstream = up_writer
            link.tasks = [
                asyncio.create_task(self._pump(reader, up_writer)),
                asyncio.create_task(self._pump(up_reader, writer)),
            ]
            done, _ = await asyncio.wait(link.tasks, return_when=asyncio.FIRST_EXCEPTION)
            # A side that was reset resets the other one too, as it would without
            # a proxy in between; a clean end (EOF) was passed on as one.
            if any(not task.cancelled() and task.exception() for task in done):
                link.abort()
            await asyncio.gather(*link.tasks, return_exceptions=True)
        except (OSError, asyncio.CancelledError):
            link.abort()
        finally:
            self._links.discard(link)
            for side in (writer, link.upstream):
                if side is not None and not side.is_closing():
                    side.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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

        delivery = asyncio.create_task(deliver())
        try:
            while True:
                data = await reader.read(65536)
                await self._held.wait()
                queue.put_nowait((time.monotonic(), data))
                if not data:
                    break
            await delivery
        except (OSError, asyncio.CancelledError):
            delivery.cancel()
            raise
