"""The database: one async engine per worker, one session per request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from .config import Settings
from .engine import database_url, engine_options, tune_sqlite


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        engine = create_async_engine(
            database_url(settings, asyncio=True), **engine_options(settings, asyncio=True)
        )
        tune_sqlite(engine.sync_engine)
        instrumentor = SQLAlchemyInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        # The instrumentation declares SQLAlchemy < 2.1 but relies only on its
        # stable event API; the kit's tests check the spans on what is installed.
        instrumentor.instrument(engine=engine.sync_engine, skip_dep_check=True)
        return cls(engine)

    async def ping(self, timeout: float) -> None:
        async with asyncio.timeout(timeout), self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.state.database
    async with database.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]
