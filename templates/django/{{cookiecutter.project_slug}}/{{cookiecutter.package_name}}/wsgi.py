"""The WSGI application gunicorn serves (the Procfile's ``web`` process)."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from .chunked import ChunkedBody

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{{ cookiecutter.package_name }}.settings")

application = ChunkedBody(get_wsgi_application(), settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
