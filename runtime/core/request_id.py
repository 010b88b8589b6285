"""Request ids (docs/contract.md, section 4): a caller's id is kept only when it
is safe to log and echo; otherwise the request gets a new one."""

from __future__ import annotations

import re
from uuid import uuid4

HEADER = "X-Request-ID"
_SAFE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id(incoming: str | None) -> str:
    """The id of a request whose ``X-Request-ID`` header is ``incoming`` (None when absent)."""
    if incoming is not None and _SAFE.fullmatch(incoming) is not None:
        return incoming
    return uuid4().hex
