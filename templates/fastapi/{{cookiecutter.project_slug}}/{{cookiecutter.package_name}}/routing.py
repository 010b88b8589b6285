"""Routes whose JSON bodies are taken and parsed as the contract says (section 3).

A body with another media type is a 415 before FastAPI reads it (FastAPI
itself would hand the raw bytes to validation, a 422).

Starlette's ``Request.json`` is ``json.loads`` on the raw bytes, which takes a
byte-order mark, UTF-16, ``NaN`` and ``Infinity``. FastAPI answers the
``json.JSONDecodeError`` that ``parse_json`` raises as ``json_invalid``,
which the error handlers turn into 400 ``invalid_json``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from .json_body import is_json_media_type, parse_json


class JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class JsonRoute(APIRoute):
    """FastAPI's documented way to give a route its own ``Request`` class."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def handle(request: Request) -> Response:
            if takes_body and not is_json_media_type(request.headers.get("content-type")):
                raise HTTPException(status_code=415)
            return await handler(JsonRequest(request.scope, request.receive))

        return handle
