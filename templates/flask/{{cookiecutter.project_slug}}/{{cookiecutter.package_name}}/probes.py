"""Liveness, readiness and the Prometheus scrape (contract, section 3)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from . import lifecycle
from .config import get_settings
from .db import EXTENSION, Database
from .logging import get_logger
from .metrics import exposition

bp = Blueprint("probes", __name__)
log = get_logger(__name__)
_last_ready: bool | None = None


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/ready")
def ready() -> tuple[dict[str, Any], int]:
    global _last_ready
    # Set by gunicorn's master the moment it receives SIGTERM (gunicorn.conf.py).
    if lifecycle.is_draining():
        return {"status": "draining", "checks": {}}, 503
    database: Database = current_app.extensions[EXTENSION]
    timeout = get_settings().ready_timeout
    try:
        database.ping(timeout)
        check = {"status": "ok"}
    except TimeoutError:
        check = {"status": "error", "error": f"no answer within {timeout:g}s"}
    except Exception as exc:
        check = {"status": "error", "error": str(exc).splitlines()[0][:200] or type(exc).__name__}
    ok = check["status"] == "ok"
    if ok != _last_ready:
        (log.info if ok else log.warning)("readiness changed", ready=ok, database=check)
        _last_ready = ok
    body = {"status": "ok" if ok else "unavailable", "checks": {"database": check}}
    return body, 200 if ok else 503


@bp.get("/metrics")
def metrics() -> Response:
    body, content_type = exposition(request.headers.get("Accept"))
    return Response(body, content_type=content_type)
