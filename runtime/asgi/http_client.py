"""The worker's HTTP client for calls to other services (docs/contract.md, section
12): an ``httpx2.AsyncClient`` whose every attempt has a CLIENT span, carries
the request's trace and ``X-Request-ID``, and is counted; and ``deliver``,
which sends a message in the background and retries it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2

from . import tasks
from .config import Settings
from .outbound import ATTEMPTS, BACKOFF, Attempt, Delivery, backoff


class TracedTransport(httpx2.AsyncBaseTransport):
    """Each request the client sends, as one ``Attempt``, through a transport made
    at the first: its connection code and TLS context took 50 ms of every worker's
    start, which a service that never calls out should not pay."""

    def __init__(self) -> None:
        self._transport: httpx2.AsyncBaseTransport | None = None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._transport is None:
            self._transport = httpx2.AsyncHTTPTransport()
        attempt = Attempt(request.method, str(request.url), request.headers)
        try:
            response = await self._transport.handle_async_request(request)
        except BaseException as error:
            attempt.failed(error)
            raise
        attempt.answered(response.status_code)
        return response

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()


def new_client(settings: Settings) -> httpx2.AsyncClient:
    """The worker's client: timeouts from the settings, no redirects followed.

    Proxies from the environment are not used: their transports would bypass
    the traced one (pass ``mounts`` to a client of your own for a proxy)."""
    return httpx2.AsyncClient(
        transport=TracedTransport(),
        timeout=httpx2.Timeout(
            settings.http_client_timeout, connect=settings.http_client_connect_timeout
        ),
        follow_redirects=False,
        trust_env=False,
    )


async def deliver(
    client: httpx2.AsyncClient,
    name: str,
    url: str,
    json: Any,
    *,
    method: str = "POST",
    attempts: int = ATTEMPTS,
    base_backoff: float = BACKOFF,
) -> bool:
    """Send ``json`` to ``url`` until it is taken (a 2xx), retrying connection errors,
    timeouts and 5xx with backoff and jitter; whether it was delivered. Run it as
    background work (``Tasks.spawn``); how it ended is counted and, unless
    delivered, logged (``name`` labels both)."""
    delivery = Delivery(name, url)
    try:
        while True:
            delivery.attempts += 1
            try:
                response = await client.request(method, url, json=json)
            except httpx2.TransportError as error:
                delivery.failed(error)
                retry = True
            else:
                retry = delivery.answered(response.status_code)
            outcome = delivery.outcome(retry, attempts, stopping=tasks.stopping())
            if outcome is not None:
                return delivery.end(outcome)
            await tasks.pause(backoff(delivery.attempts, base_backoff))
    except asyncio.CancelledError:
        delivery.end("abandoned")
        raise
    except Exception:
        delivery.end("failed")
        raise
