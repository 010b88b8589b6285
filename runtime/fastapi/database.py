"""The database: one async engine per worker, made by the lifespan (app.py), and
one session per request (``Session``), or per piece of background work
(``Sessions``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from . import engine
from .config import Settings
from .logging import get_logger

log = get_logger(__name__)


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._checks: set[asyncio.Future[None]] = set()  # readiness checks under way

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        created = create_async_engine(
            engine.database_url(settings, asyncio=True),
            **engine.engine_options(settings, asyncio=True),
        )
        engine.instrument(created.sync_engine)
        return cls(created)

    async def ping(self, timeout: float) -> None:
        """``SELECT 1``; raises ``TimeoutError`` without an answer within ``timeout``.

        The check is not cancelled at the timeout (psycopg would then wait on
        the database once more, to cancel the query): it ends by itself within
        the database deadlines (postgres.py), and the probe answers meanwhile.
        """
        check = asyncio.ensure_future(self._select_one())
        self._checks.add(check)
        check.add_done_callback(self._checks.discard)
        done, _ = await asyncio.wait({check}, timeout=timeout)
        if not done:
            raise TimeoutError
        check.result()

    async def _select_one(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.state.database
    session = database.sessions()
    try:
        yield session
    finally:
        await close_quietly(session)


async def close_quietly(session: AsyncSession) -> None:
    """Roll back and return the connection. The request's work is done: a
    connection that died meanwhile (a database restart) must not fail it, and
    SQLAlchemy has already discarded that connection from the pool."""
    try:
        await session.close()
    except SQLAlchemyError as error:
        log.warning("connection lost after the request's work", error=str(error).splitlines()[0])


def get_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    database: Database = request.state.database
    return database.sessions


# scope="function": the session closes before the response is sent, so its
# connection is back in the pool while the response travels.
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]
# For work that outlives the request (``Tasks``): it opens sessions of its own.
Sessions = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessions)]
