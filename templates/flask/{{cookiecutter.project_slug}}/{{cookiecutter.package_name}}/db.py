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

from .config import Settings
from .engine import (
    check_before_use,
    database_url,
    engine_options,
    trace_statements,
    tune_sqlite,
)
from .logging import get_logger

log = get_logger(__name__)

EXTENSION = "{{ cookiecutter.package_name }}.database"


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
        engine = create_engine(database_url(settings), **engine_options(settings))
        tune_sqlite(engine)
        check_before_use(engine)
        trace_statements(engine)
        return cls(engine)

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


def get_session() -> Session:
    """The current request's session, opened on first use."""
    session: Session | None = g.get("db_session")
    if session is None:
        database: Database = current_app.extensions[EXTENSION]
        session = g.db_session = database.sessions()
    return session


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
