"""URLs of the API. The probes and the scrape (/healthz, /ready, /metrics) are
answered by ``middleware.ProbeMiddleware`` before routing (see there why)."""

from django.urls import include, path

from .views import about

urlpatterns = [
    path("", about, name="about"),
    path("api/", include("{{ cookiecutter.package_name }}.items.urls")),
]

handler400 = "{{ cookiecutter.package_name }}.errors.bad_request"
handler403 = "{{ cookiecutter.package_name }}.errors.permission_denied"
handler404 = "{{ cookiecutter.package_name }}.errors.not_found"
handler500 = "{{ cookiecutter.package_name }}.errors.server_error"
