"""The bare FastAPI baseline: the generated service's endpoints, no instrumentation.

Same framework, database driver, pool settings and server as the generated
service, and its example's endpoint as written (a session per request from a
dependency, ``session.get``, a response model), so the difference measured is
the cost of observability alone.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import Integer, String, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


def async_url(url: str) -> str:
    if url.startswith("sqlite"):
        return url.replace("sqlite://", "sqlite+aiosqlite://", 1)
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    engine = create_async_engine(
        async_url(os.environ["DATABASE_URL"]),
        pool_size=5,
        max_overflow=5,
        pool_timeout=2,
        pool_pre_ping=True,
    )
    yield {"engine": engine, "sessions": async_sessionmaker(engine, expire_on_commit=False)}
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/ready")
async def ready(request: Request) -> dict[str, str]:
    async with request.state.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return {"status": "ok"}


@app.get("/")
async def about() -> dict[str, str]:
    return {"service": "bare", "version": "0"}


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.state.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session, scope="function")]
MAX_ID = 2**31 - 1


class ItemOut(BaseModel):
    id: int
    name: str


# A router included with a prefix, as the generated service's items are: the
# cost of matching through it is FastAPI's, whatever the observability.
items = APIRouter(prefix="/api/items")


@items.get("/{item_id}")
async def get_item(item_id: str, session: Session) -> ItemOut:
    digits = item_id.isascii() and item_id.isdigit() and len(item_id) <= len(str(MAX_ID))
    number = int(item_id) if digits else 0
    item = await session.get(Item, number) if 0 < number <= MAX_ID else None
    if item is None:
        raise HTTPException(status_code=404)
    return ItemOut(id=item.id, name=item.name)


app.include_router(items)
