"""Liveness, readiness and the Prometheus scrape (contract, section 3)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from . import readiness
from .config import get_settings
from .db import Database
from .metrics import exposition

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    body, status = readiness.draining() or await _check(request.state.database)
    return JSONResponse(body, status_code=status)


async def _check(database: Database) -> readiness.Answer:
    timeout = get_settings().ready_timeout
    try:
        await database.ping(timeout)
        check = readiness.passed()
    except Exception as exc:
        check = readiness.failed(exc, timeout)
    return readiness.answer({"database": check})


@router.get("/metrics")
def metrics(request: Request) -> Response:
    body, content_type = exposition(request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})
