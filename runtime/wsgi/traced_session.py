"""The ``requests.Session`` of ``http_client()``: its own module so that requests
is imported at the client's first use, not with the service (http_client.py)."""

from __future__ import annotations

from typing import Any

import requests

from .outbound import Attempt


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
