"""The request pipeline (pipeline.py) in a Django project: the first entries of
``MIDDLEWARE`` (settings.py), outermost first.

1. ``RequestMiddleware``: the request pipeline, and the contract's JSON body
   for every error response, whichever view or middleware made it.
2. ``ProbeMiddleware``: /healthz, /ready and /metrics, answered at once.
3. ``AllowedHostsMiddleware``: requests for a host ALLOWED_HOSTS does not list
   are answered 400.

Under them, at the WSGI boundary (wsgi.py), bodies are read alike whatever
their framing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import ResolverMatch, URLPattern, URLResolver, get_resolver
from django.views import View

from . import probes
from .config import get_settings
from .handlers import KEPT_HEADERS, ErrorResponse, response_for_exception
from .pipeline import Pipeline
from .request_id import HEADER
from .wsgi import ENVIRON, REQUEST_ID_KEY

GetResponse = Callable[[HttpRequest], HttpResponseBase]

_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def route_template(match: ResolverMatch | None) -> str:
    """``api/items/<int:item_id>`` as the contract writes it, ``/api/items/{item_id}``;
    empty when no route matched."""
    if match is None:
        return ""
    return _template(match.route)


# One per URL pattern, written once: 0.15 µs against 2.0 for the substitution (timeit).
@functools.lru_cache(maxsize=1024)
def _template(route: str) -> str:
    return "/" + _CONVERTER.sub(r"{\1}", route)


def routes() -> Iterator[tuple[str, set[str]]]:
    """Each URL pattern's template (as ``route_template`` writes it) and the methods
    its view answers: a class-based view's handlers (HEAD wherever GET is), and
    every method Django's views know for a view that names none (a function)."""
    return _routes(get_resolver().url_patterns, "")


def _routes(
    patterns: Iterable[URLPattern | URLResolver], prefix: str
) -> Iterator[tuple[str, set[str]]]:
    for entry in patterns:
        # Joined as Django joins ResolverMatch.route.
        route = str(entry.pattern)
        route = prefix + route.removeprefix("^") if prefix else route
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, route)
            continue
        view_class = getattr(entry.callback, "view_class", None)
        if view_class is None:
            names = set(View.http_method_names)
        else:
            names = {name for name in view_class.http_method_names if hasattr(view_class, name)}
            names |= {"head"} if "get" in names else set()
        yield _template(route), {name.upper() for name in names}


class RequestMiddleware:
    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        # gthread serves WEB_THREADS requests at once; MAX_IN_FLIGHT leaves
        # threads free to answer probes and refusals.
        self.pipeline = Pipeline(get_settings())

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        meta = request.META
        exchange = self.pipeline.begin(
            request.method or "",
            request.path,
            request.scheme or "http",
            incoming_id=meta.get(REQUEST_ID_KEY),
            hosts=[meta["HTTP_HOST"]] if "HTTP_HOST" in meta else [],
            # gunicorn's worker refuses an HTTP/1.1 request without one (server.py);
            # Django's test client sends none.
            host_required=False,
            carrier=meta,
            getter=ENVIRON,
        )
        status = 500
        try:
            if exchange.refusal is None:
                response = _as_contract_error(self.get_response(request))
            else:
                status, code, headers = exchange.refusal
                response = ErrorResponse(status, code, headers=headers)
            response[HEADER] = exchange.request_id
            if isinstance(response, HttpResponse) and not response.has_header("Content-Length"):
                # Spares gunicorn chunked encoding (CommonMiddleware would do it,
                # but only after validating the host, which probes must not need).
                response["Content-Length"] = str(len(response.content))
            exchange.route = route_template(request.resolver_match)
            status = response.status_code
        finally:
            exchange.finish(status)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # None lets Django answer: Http404 and friends, and anything else as a
        # 500 (handlers.log_unhandled_exception logs it first).
        return response_for_exception(exception)


def _as_contract_error(response: HttpResponseBase) -> HttpResponseBase:
    """Django's own error pages (404, 405, 400 for a bad host, 403, 500) as the
    contract's JSON errors; Django's debug pages stay as they are."""
    if response.status_code < 400 or settings.DEBUG or isinstance(response, ErrorResponse):
        return response
    if response.get("Content-Type", "").startswith("application/json"):
        return response
    kept = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
    return ErrorResponse(response.status_code, headers=kept)


class ProbeMiddleware:
    """Answers the probes and the scrape before anything else runs.

    Kubelets and Prometheus address a pod by its IP, which no ALLOWED_HOSTS
    lists; and the contract keeps probes out of tracing, load shedding,
    the access log and the HTTP metrics.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.probes = probes.views()

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        probe = self.probes.get(request.path_info)
        if probe is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return ErrorResponse(405, headers={"Allow": "GET, HEAD"})
        return probe(request)


class AllowedHostsMiddleware:
    """Validates the Host header against ALLOWED_HOSTS before any view runs.

    Django checks it only when something asks for the host (CommonMiddleware,
    which this project does without so that probes need no host); Django turns
    the DisallowedHost raised here into its 400 answer, inside the request's
    span and access line.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.valid = _ValidHosts()

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        host = request.META.get("HTTP_HOST")
        if not self.valid.known(host):
            request.get_host()  # raises DisallowedHost
            self.valid.add(host)
        return self.get_response(request)


class _ValidHosts:
    """``Host`` values ``request.get_host()`` accepted, so a service checks each of
    its few hosts once rather than once a request (Django's regular expressions
    took ~20 µs of each request in the bench's profile).

    Django decides from the ``Host`` line, ALLOWED_HOSTS and DEBUG; a change
    of either setting (tests override them) starts the set again. With
    USE_X_FORWARDED_HOST, or without a ``Host``, every request is checked.
    """

    LIMIT = 256  # the hosts a wildcard allows are many: made-up ones stop being kept

    def __init__(self) -> None:
        self.hosts: set[str] = set()
        self.allowed: object = None
        self.debug = False

    def known(self, host: str | None) -> bool:
        if host is None or settings.USE_X_FORWARDED_HOST:
            return False
        if settings.ALLOWED_HOSTS is not self.allowed or self.debug != settings.DEBUG:
            self.hosts = set()
            self.allowed, self.debug = settings.ALLOWED_HOSTS, settings.DEBUG
        return host in self.hosts

    def add(self, host: str | None) -> None:
        """``host`` passed ``get_host()``; it decided on another header with
        USE_X_FORWARDED_HOST, so the ``Host`` alone says nothing then."""
        if host is not None and not settings.USE_X_FORWARDED_HOST and len(self.hosts) < self.LIMIT:
            self.hosts.add(host)
