"""The project's URLs. The probes and the scrape (/healthz, /ready, /metrics) are
answered before routing, by the runtime's middleware."""

from django.urls import include, path

urlpatterns = [
    path("", include("{{ cookiecutter.package_name }}.runtime.urls")),
    path("api/", include("{{ cookiecutter.package_name }}.items.urls")),
]
