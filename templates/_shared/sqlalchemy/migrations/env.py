"""Alembic environment: migrate the database named by DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from {{ cookiecutter.package_name }}.config import get_settings
from {{ cookiecutter.package_name }}.engine import connect_args, database_url
from {{ cookiecutter.package_name }}.logging import configure_logging
from {{ cookiecutter.package_name }}.models import Base

settings = get_settings()
configure_logging(settings.log_level, settings.log_format)
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(settings).render_as_string(hide_password=False),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(
        database_url(settings), poolclass=NullPool, connect_args=connect_args(settings)
    )
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
