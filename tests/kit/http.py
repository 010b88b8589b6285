"""HTTP helpers that need more control than httpx gives: slow uploads."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def slow_post_json(
    port: int,
    path: str,
    payload: dict[str, Any],
    seconds: float,
    headers: dict[str, str] | None = None,
) -> RawResponse:
    """POST ``payload`` as JSON, dribbling the body over ``seconds``: a request that
    stays in flight for that long without any help from the server."""
    body = json.dumps(payload).encode()
    pieces = max(2, int(seconds / 0.1))

    def dribble() -> Iterator[bytes]:
        step = max(1, len(body) // pieces)
        delay = seconds / (len(body) / step)
        for offset in range(0, len(body), step):
            yield body[offset : offset + step]
            time.sleep(delay)

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds + 30)
    try:
        connection.request(
            "POST",
            path,
            body=dribble(),
            headers={
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
                **(headers or {}),
            },
        )
        response = connection.getresponse()
        return RawResponse(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        connection.close()
