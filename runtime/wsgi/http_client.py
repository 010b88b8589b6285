"""The HTTP client for calls to other services (docs/contract.md, section 12): a
``requests.Session`` per thread whose every attempt has a CLIENT span, carries
the request's trace and ``X-Request-ID``, and is counted; and ``deliver``,
which sends a message in the background and retries it.

requests rather than httpx: every project already installs it (the OTLP
exporter sends spans with it), it is what Flask and Django code calls, and a
call costs the same CPU (bench/outbound.py). A session per thread, because a
``Session`` is not documented as safe to share between threads. requests is
imported at the first call: with this module, it took 36 ms of a Django
worker's start (``-X importtime``), for a client many services never call.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from . import tasks
from .config import get_settings
from .outbound import ATTEMPTS, BACKOFF, Delivery, backoff

if TYPE_CHECKING:
    import requests

    from .traced_session import TracedSession

_local = threading.local()


def http_client() -> requests.Session:
    """This thread's session, for any call to another service."""
    session: TracedSession | None = getattr(_local, "session", None)
    if session is None:
        from .traced_session import TracedSession

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
    import requests

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
