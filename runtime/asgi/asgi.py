"""The request pipeline (pipeline.py) as one pure ASGI layer, the outermost of
the application: the request id on every response, load shedding, the body
limit, the JSON body rules, and a JSON 500 for an exception nothing else answered."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import orjson
from opentelemetry.propagators.textmap import Getter
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import Settings
from .json_body import is_json_media_type, parse_json
from .pipeline import Pipeline, error_body
from .request_id import HEADER

RawHeaders = list[tuple[bytes, bytes]]
_HEADER = HEADER.lower().encode("latin-1")


class ScopeHeaders(Getter[RawHeaders]):
    """Propagation headers (``traceparent``) straight from the ASGI scope."""

    def get(self, carrier: RawHeaders, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [value.decode("latin-1") for header, value in carrier if header == name]
        return values or None

    def keys(self, carrier: RawHeaders) -> list[str]:
        return [header.decode("latin-1") for header, _ in carrier]


SCOPE_HEADERS = ScopeHeaders()


class PipelineMiddleware:
    """``route_of(scope)`` names the route the framework matched ("" for none);
    ``takes_json(scope)`` says whether that route takes a JSON body."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        route_of: Callable[[Scope], str],
        takes_json: Callable[[Scope], bool],
    ) -> None:
        self.app = app
        self.pipeline = Pipeline(settings)
        self.max_body = settings.max_request_body_bytes
        self.route_of = route_of
        self.takes_json = takes_json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: RawHeaders = scope["headers"]
        # Several lines of one field are one comma-separated value (RFC 9110,
        # section 5.3), which no id passes. Header values are bytes: anything
        # but plain ASCII fails the id's check, so it is never echoed or logged.
        ids = [value for name, value in headers if name == _HEADER]
        exchange = self.pipeline.begin(
            scope["method"],
            scope["path"],
            scope["scheme"],
            incoming_id=b", ".join(ids).decode("latin-1") if ids else None,
            hosts=[value.decode("latin-1") for name, value in headers if name == b"host"],
            # uvicorn checks no Host at all (RFC 9112, section 3.2).
            host_required=scope["http_version"] != "1.0",
            carrier=headers,
            getter=SCOPE_HEADERS,
        )
        status = 500
        response_started = False
        id_header = (_HEADER, exchange.request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *(item for item in message.get("headers", ()) if item[0].lower() != _HEADER),
                    id_header,
                ]
            await send(message)

        try:
            if exchange.refusal is not None:
                await _send_error(send_with_id, *exchange.refusal)
            else:
                try:
                    await self.app(scope, self._body_rules(scope, receive), send_with_id)
                except Exception as exc:
                    exchange.fail(exc)
                    if not response_started:
                        await _send_error(send_with_id, 500, "internal_error")
            exchange.route = self.route_of(scope)
        finally:
            exchange.finish(status)

    def _body_rules(self, scope: Scope, receive: Receive) -> Receive:
        """A receive that holds the body to the contract (section 3) as the
        endpoint reads it, after routing, so its refusals are answered by the
        error handlers and counted under the route:

        - 413 once the body is known to be larger than MAX_REQUEST_BODY_BYTES;
        - on a route that takes JSON, once the whole body is here: 415 for
          another media type (or none), and ``json.JSONDecodeError`` (400
          ``invalid_json``) for anything but one JSON text in UTF-8.

        Routes that read no body cost nothing here, unlike a dependency of
        every route (FastAPI solved one for each request: 5.6% of ``GET /``).
        """
        headers: RawHeaders = scope["headers"]
        limit = self.max_body
        declared = next((value for name, value in headers if name == b"content-length"), b"")
        too_large = declared.isdigit() and int(declared) > limit
        received = 0
        json_route: bool | None = None  # decided at the first read: routing is done by then
        chunks: list[bytes] = []

        async def receive_within_rules() -> Message:
            nonlocal received, json_route
            if too_large:
                raise HTTPException(status_code=413)
            if json_route is None:
                json_route = self.takes_json(scope)
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                raise HTTPException(status_code=413)
            if json_route:
                chunks.append(chunk)
                if not message.get("more_body", False):
                    content_type = SCOPE_HEADERS.get(headers, "content-type")
                    if not is_json_media_type(content_type[0] if content_type else None):
                        raise HTTPException(status_code=415)
                    parse_json(b"".join(chunks))
            return message

        return receive_within_rules


async def _send_error(
    send: Send, status: int, code: str, extra: Mapping[str, str] | None = None
) -> None:
    payload = orjson.dumps(error_body(status, code))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in (extra or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
