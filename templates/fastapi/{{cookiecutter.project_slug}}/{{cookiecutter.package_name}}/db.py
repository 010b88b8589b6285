"""The database: one async engine per worker, one session per request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from .config import Settings
from .engine import database_url, engine_options, trace_statements, tune_sqlite


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
        trace_statements(engine.sync_engine)
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
