"""The Django baselines' shared part: settings, URLs and views in one module.

PostgreSQL uses Django's native psycopg pool with the generated service's sizes,
checking a connection before reuse (``CONN_HEALTH_CHECKS``) as the generated
service's pool does, and the FastAPI and Flask baselines with SQLAlchemy's pre-ping.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import dj_database_url
import django
from django.conf import settings

# The generated service's middleware that is not observability: Django's own.
FRAMEWORK_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)


def build(
    apps: Sequence[str] = (),
    middleware: Sequence[str] = (),
    urls: Sequence[Any] = (),
    configured: Callable[[], None] = lambda: None,
) -> Callable[..., Any]:
    """Configure Django, call ``configured`` (instrumentation), return the WSGI
    application; ``middleware`` (instrumentation) goes around the framework's own."""
    database = dj_database_url.parse(
        os.environ["DATABASE_URL"], conn_max_age=0, conn_health_checks=True
    )
    if database["ENGINE"].endswith("postgresql"):
        database["OPTIONS"] = {"pool": {"min_size": 5, "max_size": 10, "timeout": 2}}
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-" + "x" * 50,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["bench_items", *apps],
        MIDDLEWARE=[*middleware, *FRAMEWORK_MIDDLEWARE],
        DATABASES={"default": database},
        USE_TZ=True,
    )
    django.setup()
    configured()
    from django.core.wsgi import get_wsgi_application

    urlpatterns.extend(_routes())
    urlpatterns.extend(urls)
    return get_wsgi_application()


urlpatterns: list[Any] = []


def _routes() -> list[Any]:
    from bench_items.models import Item
    from django.db import connection
    from django.http import Http404, HttpRequest, JsonResponse
    from django.urls import include, path
    from django.views import View

    def healthz(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"status": "ok"})

    def ready(request: HttpRequest) -> JsonResponse:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return JsonResponse({"status": "ok"})

    def about(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"service": "bare", "version": "0"})

    # The generated example's view and URLs, as written.
    class ItemDetail(View):
        def get(self, request: HttpRequest, item_id: int) -> JsonResponse:
            item = Item.objects.filter(pk=item_id).first()
            if item is None:
                raise Http404
            return JsonResponse({"id": item.pk, "name": item.name})

    items = [path("items/<int:item_id>", ItemDetail.as_view(), name="item-detail")]
    return [
        path("healthz", healthz),
        path("ready", ready),
        path("", about),
        path("api/", include(items)),
    ]
