"""The FastAPI application: routers, middleware, error handlers and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI

from . import __version__
from .config import SERVICE_SLUG, get_settings
from .db import Database
from .errors import install_error_handlers
from .items import router as items_router
from .logging import configure_logging, get_logger
from .middleware import RequestMiddleware
from .probes import router as probes_router
from .request_id import HEADER, is_valid, new_request_id
from .tasks import TaskTracker
from .tracing import configure_tracing, shutdown_tracing

log = get_logger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    settings = get_settings()
    database = Database.from_settings(settings)
    tasks = TaskTracker()
    log.info("startup complete", service=settings.service_name, version=__version__)
    try:
        yield {"database": database, "tasks": tasks}
    finally:
        # uvicorn has already waited for in-flight requests.
        await tasks.drain(timeout=settings.graceful_timeout)
        await database.dispose()
        log.info("shutdown complete")
        shutdown_tracing()


async def about() -> dict[str, str]:
    """What is running here: the cheapest real request, useful to clients and benchmarks."""
    return {"service": SERVICE_SLUG, "version": __version__}


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    configure_tracing(settings)
    development = settings.environment == "development"
    app = FastAPI(
        title={{ cookiecutter.project_name | tojson }},
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs" if development else None,
        redoc_url=None,
        # The request middleware makes the server span (middleware.py).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.add_api_route("/", about, methods=["GET"], include_in_schema=False)
    app.include_router(probes_router)
    app.include_router(items_router)
    install_error_handlers(app)
    # Added last, runs first: the request id exists before anything logs.
    app.add_middleware(RequestMiddleware, settings=settings)
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name=HEADER,
        validator=is_valid,
        generator=new_request_id,
        # The id is read from its context variable; rewriting the request's
        # headers for it would cost a header-list copy per request.
        update_request_header=False,
    )
    return app


app = create_app()
