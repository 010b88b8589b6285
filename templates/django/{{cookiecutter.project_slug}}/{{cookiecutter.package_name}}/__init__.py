"""The {{ cookiecutter.project_slug }} service."""

__version__ = "{{ cookiecutter.version }}"
