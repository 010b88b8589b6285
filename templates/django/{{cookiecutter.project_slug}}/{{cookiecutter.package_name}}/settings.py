"""Django settings: the kit's runtime reads its own from the environment
(runtime/settings.py, README.md "Configuration"); the project's are below, and
any setting assigned here wins over the runtime's."""

from .runtime.settings import *  # noqa: F403
from .runtime.settings import RUNTIME_APPS, RUNTIME_MIDDLEWARE

INSTALLED_APPS = [
    *RUNTIME_APPS,
    "{{ cookiecutter.package_name }}.items",
]

MIDDLEWARE = [
    *RUNTIME_MIDDLEWARE,
]

ROOT_URLCONF = "{{ cookiecutter.package_name }}.urls"
WSGI_APPLICATION = "{{ cookiecutter.package_name }}.wsgi.application"
