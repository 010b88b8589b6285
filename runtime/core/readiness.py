"""The readiness answer (docs/contract.md, section 3), whatever the checks are.

A probe answers ``draining()`` once the service is stopping; otherwise it
runs its checks within ``READY_TIMEOUT`` and hands their outcome to
``answer``, which also logs every change between ready and not ready, once,
and publishes the outcome as the ``service_ready`` gauge.

Nothing may call ``/ready`` (a local stack has no prober), so each worker
also runs the same check itself whenever the last one is ``REFRESH_SECONDS``
old (``refresh.py`` of the server layer: a task, or a thread): ``service_ready``
exists from the worker's start and is never older than that (contract, section 7).
"""

from __future__ import annotations

import math
import time
from typing import Any

from . import lifecycle
from .config import get_settings
from .logging import get_logger
from .metrics import record_readiness

log = get_logger(__name__)

Answer = tuple[dict[str, Any], int]
_last_ready: bool | None = None

# How old service_ready may get when nothing probes the service.
REFRESH_SECONDS = 10.0
_checked_at = -math.inf  # time.monotonic() of the last outcome


def _record(ready: bool) -> None:
    global _checked_at
    record_readiness(ready)
    _checked_at = time.monotonic()


def draining() -> Answer | None:
    """503 ``draining`` from the moment gunicorn's master receives SIGTERM."""
    if lifecycle.is_draining():
        _record(False)
        return {"status": "draining", "checks": {}}, 503
    return None


def passed() -> dict[str, str]:
    return {"status": "ok"}


def failed(exc: BaseException, timeout: float) -> dict[str, str]:
    """The entry of a check that raised ``exc`` (``TimeoutError``: no answer in time)."""
    if isinstance(exc, TimeoutError):
        return {"status": "error", "error": f"no answer within {timeout:g}s"}
    return {"status": "error", "error": str(exc).splitlines()[0][:200] or type(exc).__name__}


def answer(checks: dict[str, dict[str, str]]) -> Answer:
    global _last_ready
    ok = all(check["status"] == "ok" for check in checks.values())
    _record(ok)
    if ok != _last_ready:
        (log.info if ok else log.warning)("readiness changed", ready=ok, **checks)
        _last_ready = ok
    return {"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503


def stop_within() -> float:
    """How long stopping the refresh waits for a check under way: the check's
    own ``READY_TIMEOUT``, and a second to close what it opened."""
    return get_settings().ready_timeout + 1.0


def due_in() -> float:
    """Seconds until the outcome is ``REFRESH_SECONDS`` old (0 or less: now)."""
    return _checked_at + REFRESH_SECONDS - time.monotonic()
