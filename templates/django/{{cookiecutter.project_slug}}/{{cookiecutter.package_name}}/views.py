"""The service's own views; the API's are in items/."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from . import __version__
from .config import SERVICE_SLUG


def about(request: HttpRequest) -> JsonResponse:
    """What is running here: the cheapest real request, useful to clients and benchmarks."""
    return JsonResponse({"service": SERVICE_SLUG, "version": __version__})
