"""The request pipeline in a Flask application: the WSGI layer (wsgi.py),
outermost, naming each request after the rule Flask matched.

Route templates are written the OpenAPI way in every signal, whatever Flask's
rule syntax: ``/api/items/<int:item_id>`` is ``/api/items/{item_id}``
(docs/contract.md, section 3). ``route_template`` is the one place that converts.
"""

from __future__ import annotations

import functools
import re

from flask import Flask, request

from . import pipeline
from .config import Settings
from .wsgi import PipelineMiddleware

# A rule's variable, with or without converter and arguments: <int(min=1):id>.
_VARIABLE = re.compile(r"<(?:[^<>:]*:)?([^<>:]+)>")


@functools.cache
def route_template(rule: str) -> str:
    return _VARIABLE.sub(r"{\1}", rule)


def _name_the_route() -> None:
    exchange = pipeline.current()
    if exchange is not None and request.url_rule is not None:
        exchange.route = route_template(request.url_rule.rule)


def install(app: Flask, settings: Settings) -> None:
    app.before_request(_name_the_route)
    app.wsgi_app = PipelineMiddleware(app.wsgi_app, settings)  # type: ignore[method-assign]
