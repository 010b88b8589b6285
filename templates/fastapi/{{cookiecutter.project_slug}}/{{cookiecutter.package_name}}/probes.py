"""Liveness, readiness and the Prometheus scrape (contract, section 3)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from . import lifecycle
from .config import get_settings
from .db import Database
from .logging import get_logger
from .metrics import exposition, record_readiness

router = APIRouter(include_in_schema=False)
log = get_logger(__name__)
_last_ready: bool | None = None


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    global _last_ready
    if lifecycle.is_draining():
        record_readiness(False)
        return JSONResponse({"status": "draining", "checks": {}}, status_code=503)
    database: Database = request.state.database
    timeout = get_settings().ready_timeout
    try:
        await database.ping(timeout)
        check = {"status": "ok"}
    except TimeoutError:
        check = {"status": "error", "error": f"no answer within {timeout:g}s"}
    except Exception as exc:
        check = {"status": "error", "error": str(exc).splitlines()[0][:200] or type(exc).__name__}
    ok = check["status"] == "ok"
    record_readiness(ok)
    if ok != _last_ready:
        (log.info if ok else log.warning)("readiness changed", ready=ok, database=check)
        _last_ready = ok
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": {"database": check}},
        status_code=200 if ok else 503,
    )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    body, content_type = exposition(request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})
