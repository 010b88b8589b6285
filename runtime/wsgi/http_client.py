"""The HTTP client for calls to other services (docs/contract.md, section 12): a
``requests.Session`` per thread whose every attempt has a CLIENT span, carries
the request's trace and ``X-Request-ID``, and is counted; and ``deliver``,
which sends a message in the background and retries it.

requests rather than httpx: every project already installs it (the OTLP
exporter sends spans with it), it is what Flask and Django code calls, and a
call costs the same CPU (bench/outbound.py). A session per thread, because a
``Session`` is not documented as safe to share between threads.
"""

from __future__ import annotations

import threading
from typing import Any

import requests

from . import tasks
from .config import get_settings
from .outbound import ATTEMPTS, BACKOFF, Attempt, Delivery, backoff

_local = threading.local()


class TracedSession(requests.Session):
    """Timeouts from the settings, no redirects followed, each request an ``Attempt``."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.timeout = timeout  # (connect, read), for calls that name none
        # Proxies and certificates from the environment, as requests reads them.
        self.trust_env = True

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        return super().request(method, url, *args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        attempt = Attempt(request.method or "GET", request.url or "", request.headers)
        try:
            response = super().send(request, **kwargs)
        except BaseException as error:
            attempt.failed(error)
            raise
        attempt.answered(response.status_code)
        return response


def http_client() -> requests.Session:
    """This thread's session, for any call to another service."""
    session: TracedSession | None = getattr(_local, "session", None)
    if session is None:
        settings = get_settings()
        session = TracedSession(
            (settings.http_client_connect_timeout, settings.http_client_timeout)
        )
        _local.session = session
    return session


def deliver(
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
    background work (``spawn``); how it ended is counted and, unless delivered,
    logged (``name`` labels both)."""
    delivery = Delivery(name, url)
    client = http_client()
    try:
        while True:
            delivery.attempts += 1
            try:
                response = client.request(method, url, json=json)
            except requests.RequestException as error:
                delivery.failed(error)
                retry = True
            else:
                response.close()
                retry = delivery.answered(response.status_code)
            outcome = delivery.outcome(retry, attempts, stopping=tasks.stopping())
            if outcome is not None:
                return delivery.end(outcome)
            tasks.pause(backoff(delivery.attempts, base_backoff))
    except Exception:
        delivery.end("failed")
        raise
