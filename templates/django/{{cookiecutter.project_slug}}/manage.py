#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{{ cookiecutter.package_name }}.settings")
    from django.core.management import execute_from_command_line

    from {{ cookiecutter.package_name }}.runtime import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as error:
        sys.exit(f"manage.py: {error}")


if __name__ == "__main__":
    main()
