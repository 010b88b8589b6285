"""The example resource: items stored in the database."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from .db import Database, Session
from .logging import get_logger
from .models import NAME_MAX_LENGTH, Item
from .routing import JsonRoute
from .tasks import TaskTracker

router = APIRouter(prefix="/api/items", tags=["items"], route_class=JsonRoute)
log = get_logger(__name__)

LIST_LIMIT = 100
MAX_ID = 2**31 - 1  # the column is a 32-bit integer on PostgreSQL


class ItemIn(BaseModel):
    # No control characters: PostgreSQL cannot store NUL, and none belong in a name.
    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH, pattern=r"^[^\x00-\x1f\x7f]*$")


class ItemOut(BaseModel):
    id: int
    name: str


@router.get("")
async def list_items(session: Session) -> list[ItemOut]:
    rows = await session.scalars(select(Item).order_by(Item.id).limit(LIST_LIMIT))
    return [ItemOut(id=item.id, name=item.name) for item in rows]


@router.post("", status_code=201)
async def create_item(payload: ItemIn, session: Session, request: Request) -> ItemOut:
    item = Item(name=payload.name)
    session.add(item)
    await session.commit()
    tasks: TaskTracker = request.state.tasks
    tasks.spawn(_count_items(request.state.database), name="count-items")
    return ItemOut(id=item.id, name=item.name)


@router.get("/{item_id}")
async def get_item(item_id: str, session: Session) -> ItemOut:
    # Any id that names no row is a 404, including ones no column could hold.
    number = int(item_id) if item_id.isascii() and item_id.isdigit() else 0
    item = await session.get(Item, number) if 0 < number <= MAX_ID else None
    if item is None:
        raise HTTPException(status_code=404)
    return ItemOut(id=item.id, name=item.name)


async def _count_items(database: Database) -> None:
    """Background work after a write: it holds a connection, so shutdown waits for it."""
    async with database.sessions() as session:
        total = await session.scalar(select(func.count()).select_from(Item))
    log.info("items stored", total=total)
