"""The readiness answer (docs/contract.md, section 3), whatever the checks are.

A probe answers ``draining()`` once the service is stopping; otherwise it
runs its checks within ``READY_TIMEOUT`` and hands their outcome to
``answer``, which also logs every change between ready and not ready, once,
and publishes the outcome as the ``service_ready`` gauge.
"""

from __future__ import annotations

from typing import Any

from . import lifecycle
from .logging import get_logger
from .metrics import record_readiness

log = get_logger(__name__)

Answer = tuple[dict[str, Any], int]
_last_ready: bool | None = None


def draining() -> Answer | None:
    """503 ``draining`` from the moment gunicorn's master receives SIGTERM."""
    if lifecycle.is_draining():
        record_readiness(False)
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
    record_readiness(ok)
    if ok != _last_ready:
        (log.info if ok else log.warning)("readiness changed", ready=ok, **checks)
        _last_ready = ok
    return {"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503
