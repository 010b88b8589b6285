"""Request ids: accept a caller's id only when it is safe to log and echo."""

from __future__ import annotations

import re
from uuid import uuid4

HEADER = "X-Request-ID"
_SAFE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def is_valid(value: str) -> bool:
    return _SAFE.fullmatch(value) is not None


def new_request_id() -> str:
    return uuid4().hex
