"""Request ids (docs/contract.md, section 4): a caller's id is kept only when it
is safe to log and echo; otherwise the request gets a new one."""

from __future__ import annotations

import random
import re

HEADER = "X-Request-ID"
_SAFE = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The variant (RFC 9562: 0b10) and version (4) bits, where uuid.UUID puts them.
_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4 = (0x8000 << 48) | (4 << 76)


def request_id(incoming: str | None) -> str:
    """The id of a request whose ``X-Request-ID`` header is ``incoming`` (None when absent)."""
    if incoming is not None and _SAFE.fullmatch(incoming) is not None:
        return incoming
    return new_id()


def new_id() -> str:
    """A ``uuid4().hex``: 122 random bits, and the version and variant bits.

    Drawn from ``random``, as OpenTelemetry draws trace ids (reseeded in each
    forked worker): an id is not a secret, and under load the system call
    behind ``os.urandom`` showed in the profile at ten times this function's cost.
    """
    return f"{random.getrandbits(128) & _CLEAR | _UUID4:032x}"
