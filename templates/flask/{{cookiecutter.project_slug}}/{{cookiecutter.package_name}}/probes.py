"""Liveness, readiness and the Prometheus scrape (contract, section 3)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from . import readiness
from .config import get_settings
from .db import EXTENSION, Database
from .metrics import exposition

bp = Blueprint("probes", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/ready")
def ready() -> readiness.Answer:
    return readiness.draining() or _check(current_app.extensions[EXTENSION])


def _check(database: Database) -> readiness.Answer:
    timeout = get_settings().ready_timeout
    try:
        database.ping(timeout)
        check = readiness.passed()
    except Exception as exc:
        check = readiness.failed(exc, timeout)
    return readiness.answer({"database": check})


@bp.get("/metrics")
def metrics() -> Response:
    body, content_type = exposition(request.headers.get("Accept"))
    return Response(body, content_type=content_type)
