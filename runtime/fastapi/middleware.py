"""The request pipeline in a FastAPI application: the ASGI layer (asgi.py),
outermost, naming each request after the route FastAPI matched; inside it,
HEAD answered as GET on every route of every router."""

from __future__ import annotations

from fastapi import FastAPI, params
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .asgi import PipelineMiddleware
from .config import Settings


def route_of(scope: Scope) -> str:
    """The matched route's template (``/api/items/{item_id}``); empty for none."""
    route = scope.get("route")
    return getattr(route, "path", "") if route is not None else ""


def takes_json(scope: Scope) -> bool:
    """Whether the matched route takes a JSON body: it has one, not declared as a form.

    The body rules (asgi.py) apply to such a route whichever router it is on.
    FastAPI itself would hand a body of another media type to validation (a
    422), and its ``json.loads`` also takes a byte-order mark, UTF-16, ``NaN``
    and ``Infinity``."""
    body_field = getattr(scope.get("route"), "body_field", None)
    return body_field is not None and not isinstance(body_field.field_info, params.Form)


class HeadAsGet:
    """HEAD is GET without the body (RFC 9110, section 9.1), on every route.

    FastAPI routes answer only the methods they name, so ``@router.get`` alone
    would make HEAD a 405, while ``Allow`` names HEAD (handlers.py). A HEAD no
    route takes as such is served as a GET, and the body is left out; routes
    that take HEAD themselves (Starlette's, or ``@router.head``) are left alone.
    The pipeline outside still sees HEAD: the span, the metrics and the access
    line name the method the client sent.
    """

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or self._takes_head(scope):
            await self.app(scope, receive, send)
            return
        as_get = {**scope, "method": "GET"}

        async def send_head(message: Message) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(as_get, receive, send_head)
        finally:
            # What routing added (the route, for route_of) is the HEAD request's too.
            scope.update((key, value) for key, value in as_get.items() if key != "method")

    def _takes_head(self, scope: Scope) -> bool:
        probe = {**scope}  # FastAPI's routes keep state of their own in the scope
        return any(route.matches(probe)[0] is Match.FULL for route in self.router.routes)


def install(app: FastAPI, settings: Settings) -> None:
    # Each one added runs before the ones added earlier: the pipeline, added
    # last, runs first, and everything below it is inside the request.
    app.add_middleware(HeadAsGet, router=app.router)
    app.add_middleware(
        PipelineMiddleware, settings=settings, route_of=route_of, takes_json=takes_json
    )
