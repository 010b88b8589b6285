"""The database: one engine per worker, one session per request.

A request's session is opened when the view first asks for it and closed when
the request's application context ends, whether the view returned or raised,
so its connection always goes back to the pool.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from . import engine
from .config import Settings
from .logging import get_logger

log = get_logger(__name__)

EXTENSION = __name__


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        # Readiness checks run in threads, so a database that does not answer
        # costs a probe READY_TIMEOUT and no more; a check that outlives its
        # probe ends by itself within the database timeouts (connect, pool, statement).
        self._checker = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ready-check")

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        created = create_engine(
            engine.database_url(settings, asyncio=False),
            **engine.engine_options(settings, asyncio=False),
        )
        engine.instrument(created)
        return cls(created)

    def init_app(self, app: Flask) -> None:
        app.extensions[EXTENSION] = self
        app.teardown_appcontext(_close_session)

    def ping(self, timeout: float) -> None:
        """``SELECT 1``; raises ``TimeoutError`` without an answer within ``timeout``."""
        self._checker.submit(self._select_one).result(timeout)

    def _select_one(self) -> None:
        # Outside any request's trace, so not traced (tracing.database_span).
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self._checker.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()


def database() -> Database:
    """The current application's database."""
    found: Database = current_app.extensions[EXTENSION]
    return found


def get_session() -> Session:
    """The current request's session, opened on first use."""
    session: Session | None = g.get("db_session")
    if session is None:
        session = g.db_session = database().sessions()
    return session


def get_sessions() -> sessionmaker[Session]:
    """Sessions for work that outlives the request (``spawn``): it opens its own."""
    return database().sessions


def _close_session(_: BaseException | None) -> None:
    # Rolls back whatever the view left uncommitted and returns the connection.
    session: Session | None = g.pop("db_session", None)
    if session is None:
        return
    try:
        session.close()
    except SQLAlchemyError as error:
        # The view's work is done: a connection that died meanwhile (a database
        # restart) must not fail the response, and SQLAlchemy has already
        # discarded it from the pool.
        log.warning("connection lost after the request's work", error=str(error).splitlines()[0])
