"""The bare Flask baseline: the generated service's endpoints, no instrumentation.

Its example's endpoint as written: a blueprint under ``/api/items``, the
request's session opened on first use and closed when the application
context ends, ``session.get``.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Flask, abort, g
from sqlalchemy import create_engine, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


def sync_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


engine = create_engine(
    sync_url(os.environ["DATABASE_URL"]),
    pool_size=5,
    max_overflow=5,
    pool_timeout=2,
    pool_pre_ping=True,
)
app = Flask(__name__)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/ready")
def ready() -> dict[str, str]:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return {"status": "ok"}


@app.get("/")
def about() -> dict[str, str]:
    return {"service": "bare", "version": "0"}


sessions = sessionmaker(engine, expire_on_commit=False)
MAX_ID = 2**31 - 1


def get_session() -> Session:
    session: Session | None = g.get("db_session")
    if session is None:
        session = g.db_session = sessions()
    return session


@app.teardown_appcontext
def close_session(_: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()


items = Blueprint("items", __name__, url_prefix="/api/items")


@items.get(f"/<int(min=1, max={MAX_ID}):item_id>")
def get_item(item_id: int) -> dict[str, Any]:
    item = get_session().get(Item, item_id)
    if item is None:
        abort(404)
    return {"id": item.id, "name": item.name}


app.register_blueprint(items)
