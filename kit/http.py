"""HTTP helpers that need more control than httpx gives: chunked uploads."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ChunkedExchange:
    """A chunked POST and, when its response let the connection live, a GET after it."""

    first: RawResponse
    second: RawResponse | None
    failure: str | None = None

    @property
    def closed(self) -> bool:
        return self.first.headers.get("connection", "").lower() == "close"


def post_chunked_then_get(
    port: int, path: str, body: bytes, then: str, chunk_size: int = 64 * 1024
) -> ChunkedExchange:
    """POST ``body`` with chunked transfer coding, read the response, then (unless it
    said ``Connection: close``) GET ``then`` on the same connection.

    The body is sent from a thread while the response is read, as a real client does:
    the server may answer before it has read it all."""
    host = f"127.0.0.1:{port}"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        body_sent = threading.Event()

        def send_body() -> None:
            try:
                sock.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
                    "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                )
                for offset in range(0, len(body), chunk_size):
                    piece = body[offset : offset + chunk_size]
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sock.sendall(b"0\r\n\r\n")
                body_sent.set()
            except OSError:
                pass

        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        first = _read_response(sock)
        exchange = ChunkedExchange(first, None)
        if exchange.closed:
            return exchange
        sender.join(timeout=30)
        if not body_sent.is_set():
            exchange.failure = "the server stopped taking the body but kept the connection"
            return exchange
        try:
            sock.sendall(f"GET {then} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            exchange.second = _read_response(sock)
        except (OSError, http.client.HTTPException) as error:
            exchange.failure = f"the next request on the connection failed: {error!r}"
        return exchange


def _read_response(sock: socket.socket) -> RawResponse:
    response = http.client.HTTPResponse(sock)
    try:
        response.begin()
        return RawResponse(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        response.close()
