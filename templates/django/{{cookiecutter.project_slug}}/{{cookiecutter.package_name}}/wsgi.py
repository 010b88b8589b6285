"""The WSGI application gunicorn serves (the Procfile's ``web`` process)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{{ cookiecutter.package_name }}.settings")

from .runtime import get_wsgi_application  # Django's, behind the runtime's

application = get_wsgi_application()
