"""Request ids: accept a caller's id only when it is safe to log and echo."""

from __future__ import annotations

import re
from uuid import uuid4

import structlog

HEADER = "X-Request-ID"
_SAFE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def is_valid(value: str) -> bool:
    return _SAFE.fullmatch(value) is not None


def new_request_id() -> str:
    return uuid4().hex


def bind_request_id(incoming: str) -> str:
    """The id of the request starting in this thread, on every log line it writes.

    ``incoming`` is the caller's header value (empty when absent). Threaded
    servers serve one request after another in a thread, so nothing of the
    previous request's log context may leak into this one.
    """
    request_id = incoming if is_valid(incoming) else new_request_id()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return request_id
