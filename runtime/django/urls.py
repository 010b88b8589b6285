"""The service's own URLs (``GET /``); include them in the project's URLconf.
The probes and the scrape are answered before routing (middleware.py)."""

from django.urls import path

from .views import about

urlpatterns = [path("", about, name="about")]
