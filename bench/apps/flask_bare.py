"""The bare Flask baseline: the generated service's endpoints, no instrumentation."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, abort
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


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


@app.get("/api/items/<int:item_id>")
def get_item(item_id: int) -> dict[str, Any]:
    with Session(engine) as session:
        item = session.scalar(select(Item).where(Item.id == item_id))
        if item is None:
            abort(404)
        return {"id": item.id, "name": item.name}
