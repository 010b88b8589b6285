"""Building blocks of the JSON API's views."""

from __future__ import annotations

from json import JSONDecodeError
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from . import errors
from .json_body import is_json_media_type, parse_json


class InvalidJson(ValueError):
    """The request body is not valid JSON, or not UTF-8."""


class NotJson(ValueError):
    """The request body's media type is not JSON."""


def read_json(request: HttpRequest) -> Any:
    """The request body, parsed; a body above MAX_REQUEST_BODY_BYTES raises RequestDataTooBig."""
    if not is_json_media_type(request.headers.get("Content-Type")):
        raise NotJson
    try:
        return parse_json(request.body)
    except JSONDecodeError:
        raise InvalidJson from None


@method_decorator(csrf_exempt, name="dispatch")  # no cookies, no sessions: no CSRF tokens
class ApiView(View):
    """A class-based view whose errors are JSON, as the contract's are."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)
        except InvalidJson:
            return errors.invalid_json()
        except NotJson:
            return errors.unsupported_media_type()

    def http_method_not_allowed(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        allowed = [m.upper() for m in self.http_method_names if hasattr(self, m)]
        return errors.method_not_allowed(allowed)
