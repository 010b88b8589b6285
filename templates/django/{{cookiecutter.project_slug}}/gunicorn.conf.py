"""gunicorn's settings: the kit's runtime sets them from the environment (README.md,
"Configuration"); a setting assigned below the import wins over the runtime's."""

from {{ cookiecutter.package_name }}.runtime.gunicorn import *  # noqa: F403
from {{ cookiecutter.package_name }}.runtime.gunicorn import checked_settings

# Django's own settings (DJANGO_*) are checked too, before any worker starts.
checked_settings("{{ cookiecutter.package_name }}.settings")
