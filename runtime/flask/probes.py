"""The routes every service has (docs/contract.md, section 3): liveness,
readiness, the Prometheus scrape, and ``GET /``, what is running here."""

from __future__ import annotations

from flask import Blueprint, Response, request

from . import build, readiness
from .config import get_settings
from .database import Database, database
from .metrics import exposition

bp = Blueprint("service", __name__)


@bp.get("/")
def about() -> dict[str, str]:
    """The cheapest real request: counted, logged and traced, touching nothing."""
    return {"service": build.DISTRIBUTION, "version": get_settings().service_version}


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/ready")
def ready() -> readiness.Answer:
    return readiness_answer(database())


def readiness_answer(checked: Database) -> readiness.Answer:
    """What ``/ready`` answers; the worker also runs it when nothing probes."""
    return readiness.draining() or _check(checked)


def _check(checked: Database) -> readiness.Answer:
    timeout = get_settings().ready_timeout
    try:
        checked.ping(timeout)
        check = readiness.passed()
    except Exception as exc:
        check = readiness.failed(exc, timeout)
    return readiness.answer({"database": check})


@bp.get("/metrics")
def metrics() -> Response:
    body, content_type = exposition(request.headers.get("Accept"))
    return Response(body, content_type=content_type)
