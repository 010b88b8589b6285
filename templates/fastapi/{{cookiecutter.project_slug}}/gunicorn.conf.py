"""gunicorn's settings: the kit's runtime sets them from the environment (README.md,
"Configuration"); a setting assigned below the import wins over the runtime's."""

from {{ cookiecutter.package_name }}.runtime.gunicorn import *  # noqa: F403
