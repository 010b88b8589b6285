"""The WSGI application gunicorn serves: Django's, behind the runtime's WSGI
boundary (wsgi.py)."""

from __future__ import annotations

from wsgiref.types import WSGIApplication

from django.core.wsgi import get_wsgi_application as django_application

from .config import get_settings
from .wsgi import BoundaryMiddleware


def get_wsgi_application() -> WSGIApplication:
    return BoundaryMiddleware(django_application(), get_settings())
