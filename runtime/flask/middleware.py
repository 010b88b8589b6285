"""The request pipeline (pipeline.py) in a Flask application, as hooks around
each request: it begins before any view, names the request after the rule
Flask matched, and finishes once the response is made, after the access line
and the histogram's exemplar, which carry the span's trace id. Under it, at
the WSGI boundary (wsgi.py), bodies are read alike whatever their framing.

Route templates are written the OpenAPI way in every signal, whatever Flask's
rule syntax: ``/api/items/<int:item_id>`` is ``/api/items/{item_id}``
(docs/contract.md, section 3). ``route_template`` is the one place that converts.
"""

from __future__ import annotations

import functools
import re

from flask import Flask, Request, Response, request

from .config import Settings
from .handlers import error_response
from .pipeline import Pipeline, current
from .request_id import HEADER
from .wsgi import ENVIRON, REQUEST_ID_KEY, BoundaryMiddleware

# A rule's variable, with or without converter and arguments: <int(min=1):id>.
_VARIABLE = re.compile(r"<(?:[^<>:]*:)?([^<>:]+)>")


@functools.cache
def route_template(rule: str) -> str:
    return _VARIABLE.sub(r"{\1}", rule)


class RequestPipeline:
    def __init__(self, settings: Settings) -> None:
        self.pipeline = Pipeline(settings)

    def begin(self) -> Response | None:
        # The request behind the proxy, looked up once rather than once per
        # attribute (Flask's "Notes on Proxies"); typed as the proxy's target.
        req: Request = request._get_current_object()  # type: ignore[attr-defined]
        environ = req.environ
        exchange = self.pipeline.begin(
            req.method,
            req.path,
            req.scheme,
            incoming_id=environ.get(REQUEST_ID_KEY),
            hosts=[environ["HTTP_HOST"]] if "HTTP_HOST" in environ else [],
            # gunicorn's worker refuses an HTTP/1.1 request without one (server.py).
            host_required=False,
            carrier=environ,
            getter=ENVIRON,
        )
        if exchange.refusal is not None:  # refused before routing: no route
            status, code, headers = exchange.refusal
            return error_response(status, code, headers=headers)
        if req.url_rule is not None:
            exchange.route = route_template(req.url_rule.rule)
        return None

    # The hooks after the view find the request's exchange in its context
    # (pipeline.current), not in ``flask.g``: each use of ``g`` costs a look-up
    # (five of them 6.6 µs a request, timeit).
    @staticmethod
    def answered(response: Response) -> Response:
        exchange = current()
        if exchange is not None:
            response.headers[HEADER] = exchange.request_id
            exchange.status = response.status_code
        return response

    @staticmethod
    def finish(_: BaseException | None) -> None:
        exchange = current()
        if exchange is not None:
            exchange.finish(exchange.status)


def install(app: Flask, settings: Settings) -> None:
    requests = RequestPipeline(settings)
    app.before_request(requests.begin)
    app.after_request(requests.answered)
    app.teardown_request(requests.finish)
    app.wsgi_app = BoundaryMiddleware(app.wsgi_app, settings)  # type: ignore[method-assign]
