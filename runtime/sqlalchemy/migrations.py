"""Alembic's environment as the service runs it (the Procfile's ``release``
process): the database DATABASE_URL names, through the service's driver and
timeouts, with the service's JSON logs."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData, create_engine
from sqlalchemy.pool import NullPool

from .config import get_settings
from .engine import connect_args, database_url
from .logging import configure_logging


def run_migrations(metadata: MetaData) -> None:
    """Run Alembic's migrations for ``metadata``, online or, with ``--sql``, offline."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    url = database_url(settings, asyncio=False)
    if context.is_offline_mode():
        context.configure(
            url=url.render_as_string(hide_password=False),
            target_metadata=metadata,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args(settings))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
