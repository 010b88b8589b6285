"""The request pipeline in a FastAPI application: the ASGI layer (asgi.py),
outermost, naming each request after the route FastAPI matched."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import Scope

from .asgi import PipelineMiddleware
from .config import Settings


def route_of(scope: Scope) -> str:
    """The matched route's template (``/api/items/{item_id}``); empty for none."""
    route = scope.get("route")
    return getattr(route, "path", "") if route is not None else ""


def install(app: FastAPI, settings: Settings) -> None:
    # Added last, so it runs first: everything below it is inside the request.
    app.add_middleware(PipelineMiddleware, settings=settings, route_of=route_of)
