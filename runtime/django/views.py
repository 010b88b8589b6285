"""The views every service has beyond its probes (urls.py)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from . import build
from .config import get_settings


def about(request: HttpRequest) -> JsonResponse:
    """``GET /``, what is running here: the cheapest real request, counted, logged
    and traced, touching nothing."""
    return JsonResponse({"service": build.DISTRIBUTION, "version": get_settings().service_version})
