"""Alembic's environment: the migrations of the service's models, run by the
kit's runtime on the database DATABASE_URL names (the Procfile's ``release``)."""

from {{ cookiecutter.package_name }}.models import Base
from {{ cookiecutter.package_name }}.runtime import run_migrations

run_migrations(Base.metadata)
