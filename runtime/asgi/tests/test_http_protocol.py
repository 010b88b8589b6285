"""The server's HTTP protocol (server.py) on a connection of its own: the bytes a
client writes, and the bytes the server writes back, with no socket between."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from . import runtime_module

server = runtime_module("server")
STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


class Connection(asyncio.Transport):
    """The server's side of one connection: what it wrote, and whether it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.late: list[bytes] = []  # written after the close
        self.protocol: Any = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            # uvloop raises too: the request's task fails, as an unhandled exception.
            self.late.append(bytes(data))
            raise RuntimeError("unable to perform operation on a closed transport")
        self.written += data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    @property
    def statuses(self) -> list[int]:
        return [int(status) for status in STATUS.findall(bytes(self.written))]


class App:
    """Answers 200 with the request's method and path once it has read the body;
    ``/slow`` waits for ``release`` first."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.served: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.served.append(scope["path"])
        if scope["path"] == "/slow":
            await self.release.wait()
        message = await receive()
        while message.get("more_body"):
            message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = f"{scope['method']} {scope['path']}".encode()
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def opened(app: App) -> tuple[Any, Connection, ServerState]:
    """A connection made to the server's protocol serving ``app``."""
    config = Config(app=app, http=server.HttpProtocol, lifespan="off", log_config=None)
    config.load()
    state = ServerState()
    protocol = server.HttpProtocol(config=config, server_state=state, app_state={})
    connection = Connection()
    connection.protocol = protocol
    protocol.connection_made(connection)
    return protocol, connection, state


async def serve(
    app: App, pieces: Iterable[bytes], meanwhile: Callable[[Connection], None] | None = None
) -> Connection:
    """Write ``pieces`` one by one until the server closes, look at the connection
    (``meanwhile``), then let ``/slow`` and every other request finish."""
    protocol, connection, state = opened(app)
    for piece in pieces:
        if connection.closed:
            break
        protocol.data_received(piece)
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    if meanwhile is not None:
        meanwhile(connection)
    app.release.set()
    for _ in range(10):  # pipelined requests start one after the other
        if state.tasks:
            await asyncio.wait(set(state.tasks), timeout=5)
    await asyncio.sleep(0)
    assert not connection.late, f"written after the close: {connection.late}"
    return connection


def run(
    *pieces: bytes, meanwhile: Callable[[Connection], None] | None = None
) -> tuple[Connection, App]:
    async def main() -> tuple[Connection, App]:
        app = App()
        return await serve(app, pieces, meanwhile), app

    return asyncio.run(main())


def get(target: bytes = b"/", *fields: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    lines = [b"GET " + target + b" " + version, b"Host: test", *fields]
    return b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def test_http_1_0_and_1_1_are_served() -> None:
    connection, app = run(get(version=b"HTTP/1.1"), get(b"/two", version=b"HTTP/1.0"))
    assert connection.statuses == [200, 200]
    assert app.served == ["/", "/two"]


@pytest.mark.parametrize(
    "request_bytes",
    [b"GET /\r\n\r\n", get(version=b"HTTP/2.0"), get(version=b"HTTP/0.9")],
    ids=["no-version", "2.0", "0.9"],
)
def test_other_versions_are_refused(request_bytes: bytes) -> None:
    connection, app = run(request_bytes)
    assert connection.statuses == [400]
    assert connection.closed
    assert app.served == []


def field(line_length: int) -> bytes:
    """A field whose line, CRLF included, is ``line_length`` bytes."""
    return b"X-Long: " + b"a" * (line_length - len(b"X-Long: \r\n"))


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (get(b"/", field(server.MAX_FIELD_SIZE)), 200),
        (get(b"/", field(server.MAX_FIELD_SIZE + 1)), 431),
        # Host and the others.
        (get(b"/", *(b"X-F%d: v" % n for n in range(server.MAX_FIELDS - 1))), 200),
        (get(b"/", *(b"X-F%d: v" % n for n in range(server.MAX_FIELDS))), 431),
        # "GET /aaa... HTTP/1.1"
        (get(b"/" + b"a" * (server.MAX_REQUEST_LINE - 14)), 200),
        (get(b"/" + b"a" * (server.MAX_REQUEST_LINE - 13)), 414),
    ],
    ids=["field-at-limit", "field-over", "fields-at-limit", "fields-over", "line", "line-over"],
)
def test_the_head_is_bounded_as_gunicorn_bounds_it(request_bytes: bytes, status: int) -> None:
    connection, app = run(request_bytes)
    assert connection.statuses == [status]
    assert bool(app.served) == (status == 200)


def test_an_endless_field_is_cut_off_as_it_comes() -> None:
    """httptools copies the whole value again for each piece that arrives: 64 MiB
    in 64 KiB pieces would hold the event loop for seconds."""
    piece = b"h" * 65536
    fed: list[bytes] = []

    def pieces() -> Iterable[bytes]:
        yield get().removesuffix(b"\r\n") + b"X-Endless: "
        for _ in range(1024):
            fed.append(piece)
            yield piece

    async def main() -> Connection:
        return await serve(App(), pieces())

    connection = asyncio.run(main())
    assert connection.statuses == [431]
    assert len(fed) * len(piece) <= server.MAX_HEAD + 2 * len(piece)


def test_bad_bytes_behind_a_request_in_flight_end_the_connection_after_its_answer() -> None:
    """RFC 9112, section 9.3.2: answers go in the order of the requests. A 400
    written at once would be read as the answer to the request in flight."""

    def while_in_flight(connection: Connection) -> None:
        assert connection.statuses == []
        assert not connection.closed

    for bad in (b"G(T / HTTP/1.1\r\n\r\n", get(version=b"HTTP/2.0")):
        connection, app = run(get(b"/slow") + bad, meanwhile=while_in_flight)
        assert connection.statuses == [200]
        assert connection.written.endswith(b"GET /slow")
        assert connection.closed  # uvicorn 0.32 does not say so first (Connection: close)
        assert app.served == ["/slow"]


def test_a_broken_body_behind_a_request_in_flight_is_never_served() -> None:
    broken = b"POST /broken HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    connection, app = run(get(b"/slow") + get(b"/queued") + broken)
    assert connection.statuses == [200, 200]
    assert connection.written.endswith(b"GET /queued")
    assert connection.closed
    assert app.served == ["/slow", "/queued"]


def test_a_broken_body_of_the_request_being_served_gets_its_400() -> None:
    head = b"POST /broken HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
    connection, app = run(head, b"zz\r\n")
    assert connection.statuses == [400]
    assert connection.closed
    assert app.served == ["/broken"]


def test_a_client_gone_mid_pipeline_is_gone_for_every_request() -> None:
    """uvicorn tells only the latest request of a lost connection; the one being
    served would write on the closed transport."""
    connection, app = run(get(b"/slow") + get(b"/queued"), meanwhile=Connection.close)
    assert connection.statuses == []
    assert app.served == ["/slow"]


def test_every_request_of_a_connection_has_its_own_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """REQUEST_TIMEOUT counts from each request's first byte, also on a kept-alive
    connection whose earlier requests came long before or just before it."""
    settings = replace(server.get_settings(), request_timeout=0.5)
    monkeypatch.setattr(server, "get_settings", lambda: settings)

    async def main() -> list[tuple[float, list[int], bool]]:
        protocol, connection, _ = opened(App())
        seen = []
        # (seconds after the first request, bytes sent then); the last request never ends.
        plan = [(0.0, get(b"/1")), (0.7, get(b"/2")), (1.0, b"GET /3 HTTP/1.1\r\n")]
        started = asyncio.get_running_loop().time()
        for at, sent in plan:
            await asyncio.sleep(max(0.0, started + at - asyncio.get_running_loop().time()))
            protocol.data_received(sent)
        # /3's deadline is at 1.5 s, not at 1.2 (when /2's timer fires).
        for at in (1.3, 1.8):
            await asyncio.sleep(max(0.0, started + at - asyncio.get_running_loop().time()))
            seen.append((at, connection.statuses, connection.closed))
        return seen

    assert asyncio.run(main()) == [(1.3, [200, 200], False), (1.8, [200, 200, 408], True)]
