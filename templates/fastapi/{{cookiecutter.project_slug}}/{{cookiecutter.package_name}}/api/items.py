"""The example resource: items stored in the database.

Delete it to start from an empty service: this module, its line in main.py,
``Item`` in models.py, its migration and tests/test_items.py (README.md).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..models import NAME_MAX_LENGTH, Item
from ..runtime import HttpClient, Session, Sessions, Tasks, deliver, get_logger, get_settings

router = APIRouter(prefix="/api/items", tags=["items"])
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
async def create_item(
    payload: ItemIn, session: Session, sessions: Sessions, tasks: Tasks, http: HttpClient
) -> ItemOut:
    item = Item(name=payload.name)
    session.add(item)
    await session.commit()
    tasks.spawn(_count_items(sessions), name="count-items")
    if webhook_url := get_settings().webhook_url:
        # After the response, retried, counted and logged when it fails: the
        # pattern for any message to another service (README.md, "Calling other services").
        tasks.spawn(deliver(http, "webhook", webhook_url, _created(item)), name="webhook")
    return ItemOut(id=item.id, name=item.name)


@router.get("/{item_id}")
async def get_item(item_id: str, session: Session) -> ItemOut:
    # Any id that names no row is a 404, including ones no column could hold
    # (too long for int(), too: Python refuses more than 4300 digits).
    digits = item_id.isascii() and item_id.isdigit() and len(item_id) <= len(str(MAX_ID))
    number = int(item_id) if digits else 0
    item = await session.get(Item, number) if 0 < number <= MAX_ID else None
    if item is None:
        raise HTTPException(status_code=404)
    return ItemOut(id=item.id, name=item.name)


def _created(item: Item) -> dict[str, Any]:
    """The webhook's event; its id, the same on every attempt, lets the receiver
    ignore a repeat."""
    return {
        "id": uuid.uuid4().hex,
        "type": "item.created",
        "item": {"id": item.id, "name": item.name},
    }


async def _count_items(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Background work after a write: it holds a connection, so shutdown waits for it."""
    async with sessions() as session:
        total = await session.scalar(select(func.count()).select_from(Item))
    log.info("items stored", total=total)
