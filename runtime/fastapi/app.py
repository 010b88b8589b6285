"""The FastAPI application the service's own routers join: logging, tracing,
the request pipeline (with the JSON body rules), the error handlers, the
service's own routes, an OpenAPI document that names the contract's errors, and a
lifespan that makes the database, the background-task tracker and the HTTP
client for other services, and closes them in order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

import fastapi.routing
import httpx2
from fastapi import Depends, FastAPI, Request

from . import handlers, middleware, openapi, probes
from .config import get_settings
from .database import Database
from .http_client import new_client
from .logging import configure_logging, get_logger
from .metrics import init_failure_series
from .pipeline import EXEMPT_PATHS
from .refresh import keep_ready_current
from .tasks import BackgroundTasks
from .tracing import configure_tracing, shutdown_tracing

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[dict[str, Any] | None]]

log = get_logger(__name__)


def get_tasks(request: Request) -> BackgroundTasks:
    tasks: BackgroundTasks = request.state.tasks
    return tasks


# Work that outlives the request: the lifespan waits for it at shutdown.
Tasks = Annotated[BackgroundTasks, Depends(get_tasks)]


def routes(app: FastAPI) -> Iterator[tuple[str, set[str]]]:
    """Each route's template and the methods it answers (HEAD wherever GET is:
    middleware.HeadAsGet); the probes and the scrape are not counted."""
    # FastAPI keeps an included router whole (since 0.16x) and lists its routes
    # through iter_route_contexts; before, it copied them into the app's.
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in flatten(app.routes) if flatten is not None else app.routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if isinstance(path, str) and methods and path not in EXEMPT_PATHS:
            found = {str(method) for method in methods}
            yield path, (found | {"HEAD"} if "GET" in found else found)


def get_http_client(request: Request) -> httpx2.AsyncClient:
    client: httpx2.AsyncClient = request.state.http_client
    return client


# The worker's client for calls to other services (docs/contract.md, section 12).
HttpClient = Annotated[httpx2.AsyncClient, Depends(get_http_client)]


def create_app(title: str, *, lifespan: Lifespan | None = None, **options: Any) -> FastAPI:
    """The application; add your routers to it. ``lifespan`` is your own, run inside
    the service's (the database is open for all of it); ``options`` go to FastAPI."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    configure_tracing(settings)

    @asynccontextmanager
    async def service_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        database = Database.from_settings(settings)
        tasks = BackgroundTasks()
        # Every router has joined the app by now.
        init_failure_series(routes(app))
        stop_refresh = keep_ready_current(lambda: probes.readiness_answer(database))
        http_client = new_client(settings)
        services = {"database": database, "tasks": tasks, "http_client": http_client}
        log.info("startup complete", service=settings.service_name, version=app.version)
        try:
            if lifespan is None:
                yield services
            else:
                async with lifespan(app) as state:
                    yield {**(state or {}), **services}
        finally:
            await stop_refresh()
            # uvicorn has already waited for in-flight requests.
            await tasks.drain(timeout=settings.graceful_timeout)
            await http_client.aclose()
            await database.dispose()
            log.info("shutdown complete")
            shutdown_tracing()

    development = settings.environment == "development"
    options.setdefault("docs_url", "/docs" if development else None)
    options.setdefault("redoc_url", None)
    app = FastAPI(
        title=title,
        version=settings.service_version,
        lifespan=service_lifespan,
        # The request pipeline makes the server span and the metrics.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        **options,
    )
    probes.install(app)
    handlers.install(app)
    middleware.install(app, settings)
    openapi.install(app)
    return app
